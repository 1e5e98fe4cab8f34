package api

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRequestLogsAndMetrics checks that each request is logged with its
// route, status and latency, and that /metrics exposes request latencies
// and the export counters.
func TestRequestLogsAndMetrics(t *testing.T) {
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	e := httpserver.New(httpserver.Options{Name: "api", Log: slog.New(slog.NewJSONHandler(logs, nil)), Reg: reg})
	r := &fakeReader{rows: []migrations.Row{row("evt_a", "Alice"), row("evt_b", "Bob")}}
	New(Options{Events: r, Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{}, Reg: reg}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)

	status, _ := get(t, srv, "/v1/workspaces/ws_1/audit-events", tok)
	require.Equal(t, 200, status)
	status, _ = get(t, srv, "/v1/workspaces/ws_1/audit-events?limit=0", tok)
	require.Equal(t, 400, status)
	resp, _, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv", tok)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)

	type line struct {
		Msg     string  `json:"msg"`
		Method  string  `json:"method"`
		Route   string  `json:"route"`
		Status  int     `json:"status"`
		Latency *int64  `json:"latency"`
		Bytes   float64 `json:"bytes_out"`
	}
	requests := func() []line {
		var out []line
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "request" {
				out = append(out, l)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(requests()) == 3 }, 5*time.Second, 10*time.Millisecond,
		"request log lines: %s", logs.String())
	got := requests()
	for i, want := range []struct {
		route  string
		status int
	}{
		{"/v1/workspaces/:workspace_id/audit-events", 200},
		{"/v1/workspaces/:workspace_id/audit-events", 400},
		{"/v1/workspaces/:workspace_id/audit-events.csv", 200},
	} {
		require.Equal(t, http.MethodGet, got[i].Method)
		require.Equal(t, want.route, got[i].Route)
		require.Equal(t, want.status, got[i].Status)
		require.NotNil(t, got[i].Latency, "latency logged")
		require.Positive(t, *got[i].Latency)
		require.Positive(t, got[i].Bytes)
	}

	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	metrics := string(b)
	for _, want := range []string{
		`audittrail_http_request_seconds_count{code="200",route="/v1/workspaces/:workspace_id/audit-events",service="api"} 1`,
		`audittrail_http_request_seconds_count{code="400",route="/v1/workspaces/:workspace_id/audit-events",service="api"} 1`,
		`audittrail_http_request_seconds_count{code="200",route="/v1/workspaces/:workspace_id/audit-events.csv",service="api"} 1`,
		`audittrail_api_exports_total{result="ok"} 1`,
		`audittrail_api_export_rows_total 2`,
	} {
		require.Contains(t, metrics, want)
	}
}
