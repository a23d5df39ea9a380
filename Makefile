# The two commands of the README: `make demo` and `make test`. Both start a throwaway
# PostgreSQL (scripts/pg-tmp.sh) unless DATABASE_URL is set.

GO          ?= go
# The developer tools are pinned in tools/go.mod, a module of their own, so that they stay out of
# the library's dependency graph; after one download they run from the module cache, offline.
STATICCHECK := $(GO) tool -modfile=tools/go.mod staticcheck
APISNAP     := $(GO) -C tools tool apisnap -root ..
PGTMP       := ./scripts/pg-tmp.sh
# examples/httphost is a module of its own (its go.mod says why): ./... at the root does not
# reach it, so test and lint run it in its directory as well.
HTTPHOST    := examples/httphost

.PHONY: demo test test-river-schema test-short lint api bench bench-all soak fmt

# soak: sizes (override on the command line: make soak SOAK_CHECKS=5000)
SOAK_CHECKS  ?= 1000
SOAK_SUBS    ?= 2000
SOAK_SECONDS ?= 120

## demo: run examples/quickstart, the whole life of a subscription
demo:
	$(PGTMP) $(GO) run ./examples/quickstart

## test: every test, with the race detector, against PostgreSQL: the root module's, then
## examples/httphost's (its own module). The kill -9 test runs on a throwaway server of its own,
## since it crash-restarts PostgreSQL (RELIABILITY.md).
test:
	$(PGTMP) $(GO) test -race -count=1 -timeout 30m $$($(GO) list ./... | grep -v /internal/crashtest)
	$(PGTMP) $(GO) -C $(HTTPHOST) test -race -count=1 -timeout 10m ./...
	$(PGTMP) $(GO) test -race -count=1 -v -run '^TestCrash$$' ./internal/crashtest/

## test-river-schema: the engine's tests with River's tables in a schema of their own
## (river.Config.Schema), as a host may keep them. The example programs migrate their own
## database with Engine.Migrate before they have a client, so they keep River's default.
test-river-schema:
	BILLING_TEST_RIVER_SCHEMA=river_jobs $(PGTMP) $(GO) test -count=1 . ./billingtest/... ./internal/store/...

## test-short: the pure policy tests only; no database needed
test-short:
	$(GO) test -count=1 ./calendar/... ./tariff/... ./subscription/... ./payment/... ./refund/... ./ledger/... ./money/...

## lint: gofmt, go vet, staticcheck (tools/go.mod pins it: the module proxy is needed only the
## first time) on the root module, examples/httphost and tools, and the public API against its
## snapshot in api/ (make api rewrites it)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) -C $(HTTPHOST) vet ./...
	$(GO) -C $(HTTPHOST) tool -modfile=../../tools/go.mod staticcheck ./...
	$(GO) -C tools vet ./...
	$(GO) -C tools tool staticcheck ./...
	$(APISNAP) -check ../api

## api: rewrite api/, the snapshot of the exported API of every non-internal package (README:
## "Changing the public API")
api:
	$(APISNAP) -w ../api

## soak: the model-based test (SOAK_CHECKS random sequences), the race tests (40 rounds each)
## and the multi-process kill -9 test
## (SOAK_SUBS subscriptions, SOAK_SECONDS of kills, 3 PostgreSQL crash-restarts), for as long as asked
soak:
	BILLING_MODEL_CHECKS=$(SOAK_CHECKS) BILLING_MODEL_STEPS=60 $(PGTMP) $(GO) test -count=1 -timeout 0 -run '^TestEngineModel$$' -v -rapid.shrinktime=10m .
	BILLING_RACE_ROUNDS=40 $(PGTMP) $(GO) test -count=1 -timeout 0 -run '^TestRace' -v .
	BILLING_CRASH_SUBS=$(SOAK_SUBS) BILLING_CRASH_SECONDS=$(SOAK_SECONDS) BILLING_CRASH_PG_RESTARTS=3 $(PGTMP) $(GO) test -count=1 -timeout 0 -run '^TestCrash$$' -v ./internal/crashtest/

## bench: the speed benchmarks of issue 18, one table of ratios (project ÷ anchor measured in
## the same run) on stdout; about 15 minutes (scripts/bench-table.sh, BENCHMARKS.md)
bench:
	$(PGTMP) ./scripts/bench-table.sh

## bench-all: every benchmark of every package, as go test prints them
bench-all:
	$(PGTMP) $(GO) test -run '^$$' -bench . -benchmem ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
