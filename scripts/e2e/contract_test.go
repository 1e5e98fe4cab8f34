package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// contractWS is the workspace every generated request reads and writes.
const contractWS = "ws_contract"

// schemathesis returns the Schemathesis command scripts/test installs
// (config.Schemathesis, else $AUDITTRAIL_HOME/schemathesis/bin/schemathesis),
// failing t when it is missing.
func schemathesis(t *testing.T) string {
	t.Helper()
	env := config.FromOS()
	bin := config.Schemathesis.Get(env)
	if bin == "" {
		home := config.Home.GetOr(env, config.Home.Default)
		if !filepath.IsAbs(home) {
			home = filepath.Join("..", "..", home) // relative to the repository; tests run in scripts/e2e
		}
		bin = filepath.Join(home, "schemathesis", "bin", "schemathesis")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Schemathesis is not installed (%v): run scripts/test, or schemathesis_install from scripts/lib/schemathesis.sh, or set %s", err, config.Schemathesis.Name)
	}
	return bin
}

// TestTheAPIKeepsItsContract runs Schemathesis with every check against the
// sealed stack (the sealer signs checkpoints, so proofs and the NDJSON
// export answer with real values): requests generated from /openapi.json
// for every operation, each response checked against the document.
// contract_hooks.py generates the document's formats (search syntax, CEL
// conditions over the seeded events' fields), keeps the positive cases
// within the rules no keyword states (the preview's drafts within both
// PUTs'), and aims every URL of forwarding and alerts at a loopback sink,
// so no generated host is called. Any finding fails the test with
// Schemathesis's report; so does a run that reached no 200 from the
// integrity log's routes, saved no change of each setting, made no test
// call, or previewed no draft filter matching some stored events and not
// others.
func TestTheAPIKeepsItsContract(t *testing.T) {
	proctest.Require(t)
	t.Parallel() // beside every other test, the page test included
	bin := schemathesis(t)
	// A fixed seed, so a finding reproduces; about a minute in all (some
	// 3,300 requests). One worker: with two, Hypothesis (6.x on Python
	// 3.11) fails with "AST constructor recursion depth mismatch" runtime
	// errors from its lambda cache, which are no finding but fail the run.
	// By hand: AUDITTRAIL_CONTRACT_SEED=<new> AUDITTRAIL_CONTRACT_EXAMPLES=200.
	env := config.FromOS()
	seed, examples := config.ContractSeed.Get(env), config.ContractExamples.Get(env)
	require.NoError(t, env.Err())
	require.NoError(t, config.ContractExamples.Check(examples))
	// The operations that call user-supplied URLs call this sink instead
	// (contract_hooks.py aims every URL at it), allowed by its exact
	// ip:port; it counts the forwarding test calls it receives.
	var testCalls atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/batch") {
			testCalls.Add(1)
		}
	}))
	defer sink.Close()
	s := startSealedStack(t, sink.Listener.Addr().String())
	tok := seedSealed(t, s)
	dir := runSchemathesis(t, bin, s, tok, sink.URL+"/", seed, examples)
	// The run held the answers with real values to the document, not only
	// the refusals: each of these routes answered 200 at least once.
	ok := okAnswers(t, s.api)
	t.Logf("200 answers by route: %v", ok)
	for _, route := range contractAnswered {
		require.Positive(t, ok[route], "no 200 from %s in the run", route)
	}
	require.Positive(t, testCalls.Load(), "no forwarding test call reached the sink")
	requirePartialPreview(t, dir)
	// And the settings it may change were saved: each change is in the trail.
	for _, name := range contractRecorded {
		require.Eventually(t, func() bool {
			status, body := do(t, http.MethodGet, s.api+"/v1/workspaces/"+contractWS+"/audit-events?limit=1&event="+url.QueryEscape(name), tok, "")
			return status == http.StatusOK && strings.Contains(string(body), `"event":"`+name+`"`)
		}, 60*time.Second, 250*time.Millisecond, "no %q in the trail: the run saved no such change", name)
	}
}

// seedSealed posts 30 events to the contract workspace and waits until
// they are readable and sealed in a signed checkpoint; it returns the
// workspace owner's token. The events are of the four names (three
// categories), three actors and 30 resources the hooks' conditions compare
// with, so a drafted filter matches some and not others.
func seedSealed(t *testing.T, s stack) string {
	t.Helper()
	now := time.Now().UTC()
	var batch []string
	for i := range 30 {
		batch = append(batch, fmt.Sprintf(`{"id": "contract-%03d", "workspace_id": %q, "event": %q,
			"timestamp": %q, "actor": {"type": "user", "id": "usr_%d", "name": "Ada", "email": "ada@example.com"},
			"resource": {"id": "src_%d", "name": "Web"}, "changes": {"enabled": {"old": false, "new": true}}}`,
			i, contractWS, contractEvents[i%len(contractEvents)], now.Add(-time.Duration(i)*time.Minute).Format(time.RFC3339Nano), i%3, i))
	}
	status, body := do(t, http.MethodPost, s.ingest+"/v1/events", ingestToken, `{"batch": [`+strings.Join(batch, ",")+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(body))
	tok, err := auth.Mint([]byte(jwtSecret), "usr_owner", "Owner", "owner@example.com",
		map[string]string{contractWS: "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		status, body := do(t, http.MethodGet, s.api+"/v1/workspaces/"+contractWS+"/audit-events/contract-000", tok, "")
		return status == http.StatusOK && len(body) > 0
	}, 60*time.Second, 250*time.Millisecond, "the seeded events are readable")
	waitSealed(t, s.api+"/v1/workspaces/"+contractWS, tok, int64(len(batch)))
	return tok
}

// runSchemathesis runs bin against the stack's document with the owner's
// token, the hooks of testdata/contract_hooks.py (the catalogue's names,
// URLs aimed at sink) and every check, failing t on any finding. It
// returns Schemathesis's working directory (the hooks' previews.jsonl).
func runSchemathesis(t *testing.T, bin string, s stack, tok, sink string, seed, examples int) string {
	t.Helper()
	dir := t.TempDir()
	status, body := do(t, http.MethodGet, s.api+"/v1/catalogue", "", "")
	require.Equal(t, http.StatusOK, status, string(body))
	catalogue := filepath.Join(dir, "catalogue.json")
	require.NoError(t, os.WriteFile(catalogue, body, 0o600))
	cfg := filepath.Join(dir, "schemathesis.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(contractConfig(tok)), 0o600))
	args := []string{"--config-file", cfg, "run", s.api + "/openapi.json",
		"--checks", "all", "--seed", fmt.Sprint(seed), "--max-examples", fmt.Sprint(examples), "--workers", "1",
		"--include-name-regex", contractOperations,
		"--no-color"}
	// A bound on a stalled run, not a speed check: ten minutes for the
	// suite's examples (it runs beside the package's other tests, on a
	// shared machine: the whole test took 333 s at load 15 to 19), more for
	// a run by hand with more of them (one worker: about two seconds per
	// example and operation at most on this machine).
	ctx, cancel := context.WithTimeout(context.Background(), max(10*time.Minute, time.Duration(examples)*7*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	hooks, err := filepath.Abs("testdata")
	require.NoError(t, err)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+hooks, // contract_hooks.py: the document's formats and rules
		config.ContractCatalogue.Name+"="+catalogue, config.ContractSink.Name+"="+sink)
	out, err := cmd.CombinedOutput()
	t.Logf("%s %s\n%s", bin, strings.Join(args, " "), out)
	require.NoError(t, err, "Schemathesis reported findings (see its report above)")
	return dir
}

// previewAnswer sums up one 200 of the preview in the run, as
// contract_hooks.py after_call records it.
type previewAnswer struct {
	Events       int      `json:"events"`
	Kept         int      `json:"kept"`
	Dropped      int      `json:"dropped"`
	Violations   int      `json:"violations"`
	FilterErrors int      `json:"filter_errors"`
	Filters      []string `json:"filters"`
	DraftFilters bool     `json:"draft_filters"`
	DraftPlan    bool     `json:"draft_plan"`
}

// requirePartialPreview requires that the run's previews (the hooks'
// previews.jsonl in dir) include a 200 whose draft filters dropped some of
// the stored events and kept others: a real match, neither everything nor
// nothing.
func requirePartialPreview(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "previews.jsonl"))
	require.NoError(t, err, "no 200 from the preview in the run")
	var answers, partial, violations int
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var a previewAnswer
		require.NoError(t, json.Unmarshal([]byte(line), &a), line)
		answers++
		if a.DraftFilters && len(a.Filters) > 0 && a.Dropped > 0 && a.Kept > 0 {
			partial++
		}
		if a.DraftPlan && a.Violations > 0 {
			violations++
		}
	}
	t.Logf("previews: %d answers 200, %d with draft filters dropping some events and keeping others, %d with a draft plan's violations", answers, partial, violations)
	require.Positive(t, partial, "no preview's draft filters matched some stored events and not others")
}

// contractEvents are the names of the seeded events (contract_hooks.py
// _catalogue_names).
var contractEvents = []string{"Source Created", "Source Deleted", "Warehouses Disabled", "Destination Created"}

// contractRecorded are the events of the settings changes the run makes.
var contractRecorded = []string{"Destination Filters Modified", "Tracking Plan Modified", "Audit Forwarding Enabled", "Alert Webhook Modified"}

// contractAnswered are the routes whose 200 answers the run must reach:
// the integrity log's, with a sealer signing checkpoints.
var contractAnswered = []string{
	"/v1/workspaces/:workspace_id/audit-events.ndjson",
	"/v1/workspaces/:workspace_id/audit-events/:id/proof",
	"/v1/workspaces/:workspace_id/log/checkpoint",
	"/v1/workspaces/:workspace_id/log/consistency",
}

// okAnswers counts the API's 200 answers by route, from its request
// latency histogram.
func okAnswers(t *testing.T, api string) map[string]float64 {
	t.Helper()
	status, body := do(t, http.MethodGet, api+"/metrics", "", "")
	require.Equal(t, http.StatusOK, status)
	counts := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		labels, ok := strings.CutPrefix(line, "audittrail_http_request_seconds_count{")
		if !ok || !strings.Contains(labels, `code="200"`) {
			continue
		}
		_, route, _ := strings.Cut(labels, `route="`)
		route, _, _ = strings.Cut(route, `"`)
		f := strings.Fields(line)
		n, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err, line)
		counts[route] += n
	}
	return counts
}

// contractOperations selects the operations of the contract test by name
// ("METHOD /path"): every GET, the settings' PUTs, the forwarding test
// call and preview, and the settings checks; all 28.
const contractOperations = `^(GET |PUT /v1/workspaces/\{workspace_id\}/(destination-filters|tracking-plan|forwarding|alerts)$|POST /v1/workspaces/\{workspace_id\}/(forwarding/(test|preview)|(destination-filters|tracking-plan)/validate)$)`

// contractConfig is the Schemathesis configuration: the owner's token on
// every request and the seeded workspace in every path.
func contractConfig(token string) string {
	return fmt.Sprintf(`hooks = "contract_hooks"
headers = { Authorization = "Bearer %s" }

[parameters]
"path.workspace_id" = %q
`, token, contractWS)
}

// The hooks keep a generated URL in a forwarding or alerts body only when
// the server would never call it (contract_hooks.py _never_called); every
// other becomes the sink's. That judgement is checked here against the
// server's own rule (trackingplan.ValidateURL) on spellings an attacker
// would try: a URL the hooks would keep must be one the server refuses.
func TestContractHooksKeepOnlyURLsTheServerRefuses(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	python := filepath.Join(filepath.Dir(schemathesis(t)), "python")
	urls := []string{"", "http://a.example", "HTTP://A.EXAMPLE", "hTTps://a.example:443/x?y", "http:a.example",
		"http:/a.example", "http:\\\\a.example", "//a.example", " http://a.example", "http://a.example ",
		"http://a\u0085.example", "http://a.example#x", "ftp://a.example", "https://", "http://[::1]:80/",
		"http://user@a.example", "javascript:alert(1)", "http://a.example/" + strings.Repeat("x", 2100), "\thttp://a.example",
		"http://a.example\x00", "HTTP:/\\a.example", "http://%61.example", "http://a.example:0", "http://ａ.example"}
	in, err := json.Marshal(urls)
	require.NoError(t, err)
	hooks, err := filepath.Abs("testdata")
	require.NoError(t, err)
	cmd := exec.Command(python, "-c", `import json, sys, contract_hooks as h
print(json.dumps([h._never_called(u) for u in json.load(sys.stdin)]))`)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+hooks)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var kept []bool
	require.NoError(t, json.Unmarshal(out, &kept))
	require.Len(t, kept, len(urls))
	for i, u := range urls {
		if kept[i] && u != "" {
			require.Error(t, trackingplan.ValidateURL(u), "the hooks would keep %q, which the server would call", u)
		}
	}
	require.False(t, kept[1], "a public URL becomes the sink's")
}

// The hooks' conditions (contract_hooks.py condition, the format
// audittrail-condition) are ones the server takes, even 50 enabled at once
// (the most filters, sharing one cost budget per event), so a positive case
// is never refused for its conditions; and each of the conditions they put
// in negative previews (_refused_conditions) is one the server refuses.
// Checked here against the server's own rules (trackingplan's ValidateNew
// and Compile) on 300 drawn conditions.
func TestContractHooksDrawConditionsTheServerTakes(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	python := filepath.Join(filepath.Dir(schemathesis(t)), "python")
	hooks, err := filepath.Abs("testdata")
	require.NoError(t, err)
	cmd := exec.Command(python, "-c", `import json, contract_hooks as h
from hypothesis import given, settings
drawn = []
@settings(max_examples=300, derandomize=True, database=None)
@given(h.condition)
def draw(c):
    drawn.append(c)
draw()
print(json.dumps({"taken": drawn, "refused": h._refused_conditions}))`)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+hooks)
	out, err := cmd.Output()
	require.NoError(t, err, "%s", out)
	var conds struct{ Taken, Refused []string }
	require.NoError(t, json.Unmarshal(out, &conds))
	require.Greater(t, len(conds.Taken), 100, "too few distinct conditions drawn")
	require.NotEmpty(t, conds.Refused)
	names := func(name string) error {
		if _, ok := catalogue.Lookup(name); !ok {
			return fmt.Errorf("%q is not in the catalogue", name)
		}
		return nil
	}
	check := func(cond string, n int, enabled bool) error {
		var f trackingplan.Filters
		for i := range n {
			f.Filters = append(f.Filters, trackingplan.Filter{Name: fmt.Sprint(i), Enabled: enabled, If: cond, Action: trackingplan.ActionDrop})
		}
		if err := f.ValidateNew(names); err != nil {
			return err
		}
		_, err := f.Compile()
		return err
	}
	for _, cond := range conds.Taken {
		require.NoError(t, check(cond, trackingplan.MaxFilters, true), "the hooks draw %q", cond)
	}
	for _, cond := range conds.Refused {
		for _, enabled := range []bool{true, false} { // a disabled filter's condition is checked too
			require.Error(t, check(cond, 1, enabled), "the hooks' negative previews take %q for a refused condition (enabled: %v)", cond, enabled)
		}
	}
}
