// The developer tools the Makefile runs (make lint, make api), pinned here, apart from the
// library's go.mod, so that they never enter the dependency graph of a program that imports the
// billing module. Once in the module cache they run offline. From the repository root:
//   go tool -modfile=tools/go.mod staticcheck ./...
//   go -C tools tool apisnap -root .. -check ../api
module github.com/smm-gpt/billing/tools

go 1.26.0

tool (
	github.com/smm-gpt/billing/tools/apisnap
	honnef.co/go/tools/cmd/staticcheck
)

require (
	github.com/BurntSushi/toml v1.4.1-0.20240526193622-a339e1f7089c // indirect
	golang.org/x/exp/typeparams v0.0.0-20231108232855-2478ac86f678 // indirect
	golang.org/x/mod v0.41.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/tools v0.51.0 // indirect
	honnef.co/go/tools v0.8.2 // indirect
)
