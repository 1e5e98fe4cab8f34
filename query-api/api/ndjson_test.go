package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/manifest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// provenFixture: 300 stored events, the first 290 sealed in a checkpoint
// of size 290; the rows of leaves 0-9 are gone (expired, or removed).
func provenFixture(t *testing.T) (*httptest.Server, logtest.Key, logtest.Key) {
	t.Helper()
	k, err := logtest.NewKey("audittrail.test")
	require.NoError(t, err)
	mk, err := logtest.NewKey("manifests.test")
	require.NoError(t, err)
	l := logtest.New("audittrail.test", "ws_1")
	r := &fakeReader{}
	now := time.Now()
	for i := range 300 {
		ts := now.Add(-time.Duration(300-i) * time.Minute)
		if i < 10 {
			ts = now.Add(-100 * 24 * time.Hour)
		}
		row := migrations.Row{WorkspaceID: "ws_1", Timestamp: ts.Truncate(time.Second), TimestampNs: ts.UnixNano(),
			ID: fmt.Sprintf("evt_%03d", i), Event: "Source Created", ActorType: "user", ActorID: "usr_1",
			Changes: "{}", Properties: `{"i":` + fmt.Sprint(i) + `}`, ReceivedAtNs: ts.UnixNano(), ReceivedAt: ts.Truncate(time.Second)}
		if i >= 10 {
			r.rows = append([]migrations.Row{row}, r.rows...) // newest first
		}
		if i < 290 {
			l.Append(row.TimestampNs, row.ID, leaf.Hash(&row))
		}
	}
	_, err = l.Sign(k, now)
	require.NoError(t, err)
	l.Drop(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	e := httpserver.New(httpserver.Options{Name: "api"})
	New(Options{Events: r, Integrity: l, VerifierKeys: []string{k.Verifier}, Origin: "audittrail.test", Signer: mk.Signer, ManifestKeys: []string{mk.Verifier},
		Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{}, Reg: prometheus.NewRegistry()}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, k, mk
}

func download(t *testing.T, srv *httptest.Server, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func TestSelfProvingExportVerifies(t *testing.T) {
	srv, k, mk := provenFixture(t)
	vs, err := verify.Verifiers([]string{k.Verifier})
	require.NoError(t, err)
	mvs, err := verify.Verifiers([]string{mk.Verifier})
	require.NoError(t, err)
	check := func(b []byte) verify.Report {
		rep, err := verify.Offline(bytes.NewReader(b), vs, mvs, "audittrail.test")
		require.NoError(t, err)
		return rep
	}
	status, body := download(t, srv, "/v1/workspaces/ws_1/audit-events.ndjson")
	require.Equal(t, 200, status, string(body))
	rep := check(body)
	require.Empty(t, rep.Problems)
	require.Equal(t, 280, rep.Checked, "the 10 rows not sealed in the checkpoint are left out")
	require.Equal(t, []string{"10 rows matching the query were not leaves of checkpoint 290 and are not in the export (sealed after it, or never: verify online names rows without a leaf)"}, rep.Notes)

	status, body = download(t, srv, "/v1/workspaces/ws_1/audit-events.ndjson?from_index=10&to_index=50")
	require.Equal(t, 200, status, string(body))
	rep = check(body)
	require.Empty(t, rep.Problems)
	require.Equal(t, 40, rep.Checked)
	// Leaves whose rows are gone are listed as absent, and each is a
	// problem: their expiry is not provable.
	status, gaps := download(t, srv, "/v1/workspaces/ws_1/audit-events.ndjson?from_index=0&to_index=50")
	require.Equal(t, 200, status, string(gaps))
	rep = check(gaps)
	require.Len(t, rep.Problems, 10)
	require.Contains(t, rep.Problems[0], "leaf 0: not in the export: its event is absent from the store")

	// Tampering with the file is caught.
	altered := bytes.Replace(body, []byte(`"actor_id":"usr_1"`), []byte(`"actor_id":"usr_2"`), 1)
	require.Contains(t, strings.Join(check(altered).Problems, "\n"), "row evt_010 (leaf 10): altered")
}

func TestSelfProvingExportRejectsBadInput(t *testing.T) {
	srv, _, _ := provenFixture(t)
	for _, c := range []struct{ query, field string }{
		{"checkpoint=0", "checkpoint"}, {"checkpoint=x", "checkpoint"}, {"checkpoint=", "checkpoint"}, {"from_index=5&to_index=5", "to_index"},
		{"from_index=9&to_index=3", "to_index"}, {"from_index=-1&to_index=5", "from_index"}, {"from_index=", "from_index"},
		{"to_index=x", "to_index"}, {"from_index=1&from_index=2", "from_index"}, {"to_index=-3", "to_index"},
		{"from_index=0&to_index=5&actor_id=usr_1", "actor_id"}, {"to_index=5&event=Source+Created", "event"},
		{"from_index=99999999999999999999", "from_index"}, {"limit=5", "limit"},
	} {
		status, body := download(t, srv, "/v1/workspaces/ws_1/audit-events.ndjson?"+c.query)
		require.Equal(t, 400, status, c.query)
		require.Contains(t, string(body), `"field":"`+c.field+`"`, c.query)
	}
	for _, c := range []struct{ query, field string }{
		{"checkpoint=100", "checkpoint"}, {"checkpoint=291", "checkpoint"}, // no checkpoint of this size; beyond the log
		{"from_index=290", "from_index"}, {"from_index=0&to_index=291", "to_index"}, {"to_index=291", "to_index"}, // no such leaf
	} {
		status, body := download(t, srv, "/v1/workspaces/ws_1/audit-events.ndjson?"+c.query)
		require.Equal(t, 404, status, c.query)
		require.Contains(t, string(body), `"field":"`+c.field+`"`, c.query)
	}
}

// One end of a range alone: from_index up to the checkpoint's size (at
// most the export's bound of leaves), or 0 up to to_index; the signed
// manifest claims the range it covers, and the export verifies.
func TestSelfProvingExportRangeDefaults(t *testing.T) {
	srv, k, mk := provenFixture(t)
	vs, err := verify.Verifiers([]string{k.Verifier})
	require.NoError(t, err)
	mvs, err := verify.Verifiers([]string{mk.Verifier})
	require.NoError(t, err)
	for query, want := range map[string]manifest.Range{
		"from_index=280": {From: 280, To: 290},
		"to_index=20":    {From: 0, To: 20},
	} {
		status, body := download(t, srv, "/v1/workspaces/ws_1/audit-events.ndjson?"+query)
		require.Equal(t, 200, status, string(body))
		lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
		var closing manifest.Closing
		require.NoError(t, json.Unmarshal(lines[len(lines)-1], &closing), query)
		m, err := manifest.Open([]byte(closing.Manifest), mvs)
		require.NoError(t, err, query)
		require.Equal(t, &want, m.Range, query)
		rep, err := verify.Offline(bytes.NewReader(body), vs, mvs, "audittrail.test")
		require.NoError(t, err, query)
		require.Equal(t, int(want.To-want.From), rep.Checked+len(rep.Problems), query)
	}
}

func TestParseRange(t *testing.T) {
	const size, maxLeaves = 290, 100
	for _, c := range []struct {
		query    string
		from, to int64
		status   int
		field    string
	}{
		{query: "", status: 0},
		{query: "from_index=5", from: 5, to: 105},
		{query: "from_index=250", from: 250, to: 290},
		{query: "from_index=289", from: 289, to: 290},
		{query: "to_index=100", from: 0, to: 100},
		{query: "from_index=10&to_index=110", from: 10, to: 110},
		{query: "to_index=101", status: 400, field: "to_index"},
		{query: "from_index=0&to_index=101", status: 400, field: "to_index"},
		{query: "from_index=7&to_index=7", status: 400, field: "to_index"},
		{query: "from_index=290", status: 404, field: "from_index"},
		{query: "from_index=100&to_index=291", status: 404, field: "to_index"},
		{query: "from_index=291&to_index=3", status: 404, field: "from_index"},
	} {
		q, err := url.ParseQuery(c.query)
		require.NoError(t, err)
		rg, err := parseRange(q, Filters{}, size, maxLeaves)
		if c.status != 0 {
			var he *httpserver.Error
			require.ErrorAs(t, err, &he, c.query)
			require.Equal(t, c.status, he.Status, c.query)
			require.Equal(t, c.field, he.Field, c.query)
			continue
		}
		require.NoError(t, err, c.query)
		if c.query == "" {
			require.Nil(t, rg)
			continue
		}
		require.Equal(t, &manifest.Range{From: c.from, To: c.to}, rg, c.query)
	}
}
