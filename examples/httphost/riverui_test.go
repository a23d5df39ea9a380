package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

// get sends GET path with the DEMO sign-in cookie (none when operator is empty: "operator:olga",
// "read_only:viewer") and returns the status, the Content-Type and the body.
func (b *testBundle) get(t *testing.T, path, operator string) (int, string, string) {
	t.Helper()
	return b.send(t, http.MethodGet, path, operator, nil)
}

func (b *testBundle) send(t *testing.T, method, path, operator string, header http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if operator != "" {
		req.AddCookie(&http.Cookie{Name: demoOperatorCookie, Value: operator})
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// riverUIJob is a job as River UI's GET /api/jobs lists it.
type riverUIJob struct {
	ID    int64  `json:"id"`
	Kind  string `json:"kind"`
	State string `json:"state"`
	Args  string `json:"args"`
}

func TestRiverUIBehindSignIn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	code, sub := b.subscribe(t, "anna", "tok_anna")
	require.Equal(t, http.StatusCreated, code, sub)
	id := sub["id"].(string)
	const jobsPath = "/riverui/api/jobs?state=scheduled&limit=100"

	for _, path := range []string{"/riverui/", jobsPath} {
		code, _, body := b.get(t, path, "")
		require.Equal(t, http.StatusUnauthorized, code, "no identity, no River UI: %s", path)
		require.Contains(t, body, demoSignInURL, "the 401 page points to the sign-in")
		require.NotContains(t, body, id)

		code, _, body = b.get(t, path, "read_only:viewer")
		require.Equal(t, http.StatusForbidden, code, "River UI has no read-only mode: operators only: %s", path)
		require.NotContains(t, body, id)
	}

	code, ctype, page := b.get(t, "/riverui/", "operator:olga")
	require.Equal(t, http.StatusOK, code, page)
	require.Contains(t, ctype, "text/html")
	require.Contains(t, page, "<title>River</title>")
	require.Contains(t, page, `/riverui/api`, "the page's API URL carries the prefix")
	script := regexp.MustCompile(`src="(/riverui/assets/[^"]+\.js)"`).FindStringSubmatch(page)
	require.NotNil(t, script, "the page loads its script under the prefix: %s", page)
	code, _, _ = b.get(t, script[1], "operator:olga")
	require.Equal(t, http.StatusOK, code, "the script is served")
	code, _, _ = b.get(t, script[1], "")
	require.Equal(t, http.StatusUnauthorized, code, "the script is behind the sign-in too")

	// The API lists the jobs of this test's database: the renewal the checkout scheduled at
	// the period's end, and exactly the scheduled jobs River's own client lists.
	code, ctype, raw := b.get(t, jobsPath, "operator:olga")
	require.Equal(t, http.StatusOK, code, raw)
	require.Contains(t, ctype, "application/json")
	var list struct {
		Data []riverUIJob `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &list))
	var renewal *riverUIJob
	for i, j := range list.Data {
		if j.Kind == "billing_renew" && strings.Contains(j.Args, id) {
			renewal = &list.Data[i]
		}
	}
	require.NotNil(t, renewal, "the checkout's renewal job is listed: %s", raw)
	require.Equal(t, "scheduled", renewal.State)
	inDB, err := b.host.river.JobList(t.Context(), river.NewJobListParams().States(rivertype.JobStateScheduled).First(100))
	require.NoError(t, err)
	var want, got []int64
	for _, j := range inDB.Jobs {
		want = append(want, j.ID)
	}
	for _, j := range list.Data {
		got = append(got, j.ID)
	}
	require.ElementsMatch(t, want, got, "River UI reads the same river_job table")

	// A cross-site request that would change something is refused before River UI sees it,
	// even with the operator's cookie, and the job stays scheduled.
	code, _, body := b.send(t, http.MethodPost, "/riverui/api/jobs/cancel", "operator:olga",
		http.Header{"Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/json"}})
	require.Equal(t, http.StatusForbidden, code, body)
	job, err := b.host.river.JobGet(t.Context(), renewal.ID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateScheduled, job.State)
}
