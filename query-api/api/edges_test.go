package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// answer sends a request and returns the status, headers and error envelope.
func answer(t *testing.T, method, url, tok string, header ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var env struct {
		Error map[string]any `json:"error"`
	}
	if resp.StatusCode >= 400 {
		require.NoError(t, json.Unmarshal(b, &env), string(b))
		require.NotEmpty(t, env.Error["code"], string(b))
		require.NotEmpty(t, env.Error["message"], string(b))
	}
	return resp, env.Error
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	owner := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	tests := []struct{ method, path string }{
		{http.MethodPost, "/v1/workspaces/ws_1/audit-events"},
		{http.MethodDelete, "/v1/workspaces/ws_1/audit-events/evt_1"},
		{http.MethodPut, "/v1/workspaces/ws_1/audit-events.csv"},
		{http.MethodPatch, "/v1/workspaces/ws_1/audit-events/facets"},
		{http.MethodPost, "/v1/catalogue"},
		{http.MethodDelete, "/openapi.json"},
	}
	for _, tt := range tests {
		for _, tok := range []string{owner, ""} {
			t.Run(tt.method+" "+tt.path+" token="+boolWord(tok != ""), func(t *testing.T) {
				resp, env := answer(t, tt.method, srv.URL+tt.path, tok)
				require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
				require.Equal(t, "method_not_allowed", env["code"])
				require.Contains(t, resp.Header.Get("Allow"), http.MethodGet)
				require.NotContains(t, resp.Header.Get("Allow"), tt.method)
			})
		}
	}
	resp, env := answer(t, http.MethodGet, srv.URL+"/v1/workspaces/ws_1/nope", owner)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "not_found", env["code"])
}

func boolWord(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func TestMalformedQueryIs400NamingTheParameter(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	owner := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	tests := []struct{ path, field string }{
		{"/v1/workspaces/ws_1/audit-events?limit=%zz", "limit"},
		{"/v1/workspaces/ws_1/audit-events?limit=5;event=x", "limit"},
		{"/v1/workspaces/ws_1/audit-events?event=Source%20Created&since=%G0", "since"},
		{"/v1/workspaces/ws_1/audit-events?q=a%", "q"},
		{"/v1/workspaces/ws_1/audit-events?cursor=abc", "cursor"},
		{"/v1/workspaces/ws_1/audit-events?cursor=%zz", "cursor"},
		{"/v1/workspaces/ws_1/audit-events/facets?actor_id=%zz", "actor_id"},
		{"/v1/workspaces/ws_1/audit-events.csv?until=x;y", "until"},
		{"/v1/workspaces/ws_1/audit-events/evt_1?x=%zz", "x"},
		{"/v1/catalogue?a=1;b=2", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, env := answer(t, http.MethodGet, srv.URL+tt.path, owner)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, env)
			require.Equal(t, tt.field, env["field"])
		})
	}
}

func TestEveryAnswerIsNotCachedNorSniffed(t *testing.T) {
	r := &fakeReader{rows: []migrations.Row{row("evt_a", "Alice")}}
	srv := newServer(t, r)
	owner := token(t, map[string]string{"ws_1": "owner", "ws_2": "member"}, time.Hour)
	tests := []struct {
		path, tok string
		status    int
	}{
		{"/v1/workspaces/ws_1/audit-events", owner, 200},
		{"/v1/workspaces/ws_1/audit-events/evt_1", owner, 200},
		{"/v1/workspaces/ws_1/audit-events/facets", owner, 200},
		{"/v1/workspaces/ws_1/audit-events.csv", owner, 200},
		{"/v1/workspaces/ws_1/audit-events/evt_2", owner, 404},
		{"/v1/workspaces/ws_1/audit-events?limit=0", owner, 400},
		{"/v1/workspaces/ws_1/audit-events", "", 401},
		{"/v1/workspaces/ws_2/audit-events", owner, 403},
		{"/v1/workspaces/ws_3/audit-events", owner, 404},
		{"/v1/catalogue", "", 200},
		{"/nope", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, _ := answer(t, http.MethodGet, srv.URL+tt.path, tt.tok)
			require.Equal(t, tt.status, resp.StatusCode)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		})
	}
}

func TestExportRecordsThePeerUnlessBehindATrustedProxy(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		header  []string
		want    string
	}{
		{"no proxy trusted: X-Forwarded-For ignored", nil, []string{"X-Forwarded-For", "198.51.100.1"}, "127.0.0.1"},
		{"no proxy trusted: X-Real-IP ignored", nil, []string{"X-Real-IP", "198.51.100.1"}, "127.0.0.1"},
		{"no proxy trusted: no header", nil, nil, "127.0.0.1"},
		{"other proxy trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			[]string{"X-Forwarded-For", "198.51.100.1"}, "127.0.0.1"},
		{"trusted proxy: client from X-Forwarded-For", loopback, []string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1"},
		{"trusted proxy: spoofed left entry ignored", loopback,
			[]string{"X-Forwarded-For", "1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"trusted proxy: X-Real-IP", loopback, []string{"X-Real-IP", "198.51.100.2"}, "198.51.100.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRecorder{}
			e := httpserver.New(httpserver.Options{Name: "api", TrustedProxies: tt.trusted})
			New(Options{Events: &fakeReader{}, Verifier: auth.NewHMAC(secret), Recorder: rec, Reg: prometheus.NewRegistry()}).Register(e)
			srv := httptest.NewServer(e)
			defer srv.Close()
			resp, _ := answer(t, http.MethodGet, srv.URL+"/v1/workspaces/ws_1/audit-events.csv",
				token(t, map[string]string{"ws_1": "owner"}, time.Hour), tt.header...)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Len(t, rec.events, 1)
			require.Equal(t, tt.want, rec.events[0].Context.IP)
		})
	}
}

// slowExport yields rows for a while, longer than the server's write
// timeout, as a store streaming a large window does.
type slowExport struct {
	fakeReader
	rows     int
	interval time.Duration
}

func (s *slowExport) Export(ctx context.Context, _ store.Filter, fn func(r *migrations.Row) error) error {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for i := range s.rows {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		r := row(fmt.Sprintf("evt_%d", i), "Alice")
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

func TestExportOutlivesTheWriteTimeout(t *testing.T) {
	const writeTimeout = time.Second
	e := httpserver.New(httpserver.Options{Name: "api", Limits: httpserver.Limits{WriteTimeout: writeTimeout}})
	r := &slowExport{rows: 60, interval: 50 * time.Millisecond} // 3 s, three write timeouts
	New(Options{Events: r, Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{}, Reg: prometheus.NewRegistry()}).Register(e)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- httpserver.Serve(ctx, e, "127.0.0.1:0", func(a net.Addr) { addrc <- a.String() }) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	addr := <-addrc

	start := time.Now()
	resp, body, err := fetch(t, "http://"+addr+"/v1/workspaces/ws_1/audit-events.csv", token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.NoError(t, err, "the transfer is complete")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Greater(t, time.Since(start), 2*writeTimeout)
	records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 1+r.rows, "header and every row")
}
