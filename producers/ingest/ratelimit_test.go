package ingest

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/schemas/credential"
)

func TestTokenBuckets(t *testing.T) {
	limits := RateLimits{WorkspaceRate: 100, WorkspaceBurst: 1000, CredentialRate: 300, CredentialBurst: 2500}
	type step struct {
		advance time.Duration
		cred    string
		ws      map[string]int
		// wantWS / wantCred name the refusing bucket; retry is its wait.
		wantWS, wantCred string
		retry            time.Duration
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then refused then refilled", []step{
			{ws: map[string]int{"a": 1000}},
			{ws: map[string]int{"a": 1}, wantWS: "a", retry: 10 * time.Millisecond},
			{advance: 10 * time.Millisecond, ws: map[string]int{"a": 1}},
			{ws: map[string]int{"a": 50}, wantWS: "a", retry: 500 * time.Millisecond},
			{advance: 499 * time.Millisecond, ws: map[string]int{"a": 50}, wantWS: "a", retry: time.Millisecond},
			{advance: time.Millisecond, ws: map[string]int{"a": 50}},
		}},
		{"refill stops at the burst", []step{
			{ws: map[string]int{"a": 1000}},
			{advance: time.Hour, ws: map[string]int{"a": 1000}},
			{ws: map[string]int{"a": 1}, wantWS: "a", retry: 10 * time.Millisecond},
		}},
		{"workspaces have their own buckets", []step{
			{ws: map[string]int{"a": 1000}},
			{ws: map[string]int{"b": 1000}},
			{ws: map[string]int{"b": 1}, wantWS: "b", retry: 10 * time.Millisecond},
		}},
		{"a refusal takes nothing", []step{
			{ws: map[string]int{"a": 900}},
			{ws: map[string]int{"b": 1000, "a": 200}, wantWS: "a", retry: time.Second},
			{ws: map[string]int{"b": 1000}}, // b still full
		}},
		{"the credential bounds its workspaces together", []step{
			{ws: map[string]int{"a": 1000}},
			{ws: map[string]int{"b": 1000}},
			{ws: map[string]int{"c": 501}, wantCred: "c1", retry: time.Second / 300},
			{cred: "c2", ws: map[string]int{"c": 1000}},
		}},
		{"workspace and credential both short: the longer wait", []step{
			{ws: map[string]int{"a": 1000}},
			{ws: map[string]int{"b": 1000}},
			{ws: map[string]int{"a": 600}, wantWS: "a", wantCred: "c1", retry: 6 * time.Second},
		}},
		{"a clock stepping back refills nothing", []step{
			{ws: map[string]int{"a": 1000}},
			{advance: -time.Minute, ws: map[string]int{"a": 1}, wantWS: "a", retry: 10 * time.Millisecond},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(limits)
			at := now
			for i, s := range tt.steps {
				at = at.Add(s.advance)
				cred := s.cred
				if cred == "" {
					cred = "c1"
				}
				var order []string
				for ws := range s.ws {
					order = append(order, ws)
				}
				if len(order) > 1 { // the order of the request: "b" first
					order = []string{"b", "a"}
				}
				r := l.Allow(cred, order, s.ws, at)
				if s.wantWS == "" && s.wantCred == "" {
					require.Nil(t, r, "step %d", i)
					continue
				}
				require.NotNil(t, r, "step %d", i)
				require.Equal(t, s.wantWS, r.Workspace, "step %d", i)
				require.Equal(t, s.wantCred, r.Credential, "step %d", i)
				require.InDelta(t, s.retry, r.RetryAfter, float64(time.Microsecond), "step %d", i)
			}
		})
	}
}

func TestLimitOffTakesNothing(t *testing.T) {
	l := NewLimiter(RateLimits{})
	for i := 0; i < 100; i++ {
		require.Nil(t, l.Allow("c", []string{fmt.Sprint("ws_", i)}, map[string]int{fmt.Sprint("ws_", i): MaxBatch}, now))
	}
	ws, creds := l.Buckets()
	require.Zero(t, ws)
	require.Zero(t, creds)
}

func TestBucketsAreBounded(t *testing.T) {
	l := NewLimiter(RateLimits{WorkspaceRate: 100, WorkspaceBurst: 1000, CredentialRate: 1000, CredentialBurst: 1000, MaxKeys: 50})
	at := now
	// An attacker inventing workspace ids: never more than MaxKeys buckets.
	for i := 0; i < 10_000; i++ {
		ws := fmt.Sprintf("invented_%d", i)
		l.Allow(fmt.Sprintf("cred_%d", i%200), []string{ws}, map[string]int{ws: 1}, at)
		n, creds := l.Buckets()
		require.LessOrEqual(t, n, 50)
		require.LessOrEqual(t, creds, 50)
	}
	// Buckets that refilled are dropped on the next take.
	at = at.Add(time.Minute)
	l.Allow("cred_0", []string{"ws_1"}, map[string]int{"ws_1": 1}, at)
	n, creds := l.Buckets()
	require.Equal(t, 1, n)
	require.Equal(t, 1, creds)

	// A drained bucket is kept while others come and go within MaxKeys.
	l.Allow("cred_0", []string{"ws_1"}, map[string]int{"ws_1": 999}, at)
	for i := 0; i < 40; i++ {
		ws := fmt.Sprintf("other_%d", i)
		l.Allow("cred_1", []string{ws}, map[string]int{ws: 1}, at)
	}
	r := l.Allow("cred_2", []string{"ws_1"}, map[string]int{"ws_1": 1}, at)
	require.NotNil(t, r)
	require.Equal(t, "ws_1", r.Workspace)
}

func newLimitedServer(t *testing.T, pub Publisher, limits RateLimits, store *CredentialStore, clock func() time.Time) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	gw, err := New(Config{Addr: "x", Tokens: []string{token}, CredentialsTopic: "creds", Credentials: store, Topic: "audit", Limits: limits}, pub,
		slog.New(slog.NewTextHandler(io.Discard, nil)), reg, clock)
	require.NoError(t, err)
	e := httpserver.New(httpserver.Options{Name: "ingest"})
	gw.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv, reg
}

// batchOf returns a batch body of n events per workspace, in the order
// given.
func batchOf(ws ...any) string {
	var evs []string
	for i := 0; i < len(ws); i += 2 {
		for j := 0; j < ws[i+1].(int); j++ {
			evs = append(evs, ev(ws[i].(string), "Source Created", ""))
		}
	}
	return `{"batch": [` + strings.Join(evs, ",") + `]}`
}

// postRetry posts body and returns the status, the answer and Retry-After.
func postRetry(t *testing.T, srv *httptest.Server, auth, body string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return resp.StatusCode, out, resp.Header.Get("Retry-After")
}

func TestOverTheLimitIs429WithRetryAfterAndPublishesNothing(t *testing.T) {
	clock := newTestClock(now)
	pub := &fakePublisher{}
	store := &CredentialStore{}
	scoped := putCredential(t, store, "pc_limited00001", credential.Scopes{Workspaces: []string{"ws_*"}, Categories: []string{"*"}})
	srv, reg := newLimitedServer(t, pub, RateLimits{WorkspaceRate: 100, WorkspaceBurst: 1000, CredentialRate: 200, CredentialBurst: 2500}, store, clock.now)
	legacy := "Bearer " + token

	type call struct {
		advance    time.Duration
		auth, body string
		status     int
		retryAfter string
		field      string
		names      string // in the message
		published  int    // records published so far
	}
	steps := []call{
		{auth: legacy, body: batchOf("ws_a", 1000), status: 202, published: 1000},
		// One more event for ws_a needs 10 ms: Retry-After rounds up to 1 s.
		{auth: legacy, body: ev("ws_a", "Source Created", ""), status: 429, retryAfter: "1", field: "workspace_id", names: `workspace "ws_a"`, published: 1000},
		// 450 events need 4.5 s: 5.
		{auth: legacy, body: batchOf("ws_a", 450), status: 429, retryAfter: "5", field: "batch[0].workspace_id", names: `workspace "ws_a"`, published: 1000},
		// A batch spanning two workspaces, the second over its limit: 429
		// naming it, and ws_b's tokens are not taken.
		{auth: legacy, body: batchOf("ws_b", 3, "ws_a", 2), status: 429, retryAfter: "1", field: "batch[3].workspace_id", names: `workspace "ws_a"`, published: 1000},
		{auth: legacy, body: batchOf("ws_b", 1000), status: 202, published: 2000},
		{advance: 4500 * time.Millisecond, auth: legacy, body: batchOf("ws_a", 450), status: 202, published: 2450},
		// The scoped credential's bucket: 2,500 at once, then 200/s.
		{auth: "Bearer " + scoped, body: batchOf("ws_c", 1000), status: 202, published: 3450},
		{auth: "Bearer " + scoped, body: batchOf("ws_d", 1000), status: 202, published: 4450},
		{auth: "Bearer " + scoped, body: batchOf("ws_e", 501), status: 429, retryAfter: "1", field: "", names: "credential pc_limited00001", published: 4450},
		{auth: "Bearer " + scoped, body: batchOf("ws_e", 900), status: 429, retryAfter: "2", field: "", names: "credential pc_limited00001", published: 4450},
		{advance: time.Second, auth: "Bearer " + scoped, body: batchOf("ws_e", 700), status: 202, published: 5150},
	}
	for i, s := range steps {
		clock.add(s.advance)
		status, out, retry := postRetry(t, srv, s.auth, s.body)
		require.Equal(t, s.status, status, "step %d: %v", i, out)
		require.Equal(t, s.retryAfter, retry, "step %d", i)
		pub.mu.Lock()
		require.Len(t, pub.recs, s.published, "step %d", i)
		pub.mu.Unlock()
		if s.status != 429 {
			continue
		}
		apiErr := out["error"].(map[string]any)
		require.Equal(t, "rate_limited", apiErr["code"], "step %d", i)
		if s.field == "" {
			require.NotContains(t, apiErr, "field", "step %d", i)
		} else {
			require.Equal(t, s.field, apiErr["field"], "step %d", i)
		}
		require.Contains(t, apiErr["message"], s.names, "step %d", i)
		require.Contains(t, apiErr["message"], "nothing was published", "step %d", i)
	}
	require.Equal(t, float64(3), limited(t, reg, "workspace"))
	require.Equal(t, float64(2), limited(t, reg, "credential"))
}

// limited is audittrail_ingest_rate_limited_total{limit}.
func limited(t *testing.T, reg *prometheus.Registry, limit string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "audittrail_ingest_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == limit {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestRateLimitConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want RateLimits
		errs []string
	}{
		{"defaults", nil, RateLimits{WorkspaceRate: 1000, WorkspaceBurst: 5000, CredentialRate: 10000, CredentialBurst: 20000, MaxKeys: 100000}, nil},
		{"off", map[string]string{"AUDITTRAIL_INGEST_WORKSPACE_RATE": "0", "AUDITTRAIL_INGEST_CREDENTIAL_RATE": "0", "AUDITTRAIL_INGEST_WORKSPACE_BURST": "1"},
			RateLimits{WorkspaceRate: 0, WorkspaceBurst: 1, CredentialRate: 0, CredentialBurst: 20000, MaxKeys: 100000}, nil},
		{"set", map[string]string{"AUDITTRAIL_INGEST_WORKSPACE_RATE": "50", "AUDITTRAIL_INGEST_WORKSPACE_BURST": "1000", "AUDITTRAIL_INGEST_RATE_MAX_KEYS": "10"},
			RateLimits{WorkspaceRate: 50, WorkspaceBurst: 1000, CredentialRate: 10000, CredentialBurst: 20000, MaxKeys: 10}, nil},
		{"burst below a batch", map[string]string{"AUDITTRAIL_INGEST_WORKSPACE_BURST": "999", "AUDITTRAIL_INGEST_CREDENTIAL_BURST": "10"},
			RateLimits{WorkspaceRate: 1000, WorkspaceBurst: 999, CredentialRate: 10000, CredentialBurst: 10, MaxKeys: 100000},
			[]string{"AUDITTRAIL_INGEST_WORKSPACE_BURST=999: want at least 1000", "AUDITTRAIL_INGEST_CREDENTIAL_BURST=10: want at least 1000"}},
		{"negative", map[string]string{"AUDITTRAIL_INGEST_CREDENTIAL_RATE": "-1", "AUDITTRAIL_INGEST_RATE_MAX_KEYS": "-5"},
			RateLimits{WorkspaceRate: 1000, WorkspaceBurst: 5000, CredentialRate: -1, CredentialBurst: 20000, MaxKeys: -5},
			[]string{"AUDITTRAIL_INGEST_CREDENTIAL_RATE=-1", "AUDITTRAIL_INGEST_RATE_MAX_KEYS=-5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"AUDITTRAIL_INGEST_TOKENS": token}
			for k, v := range tt.env {
				env[k] = v
			}
			e := config.FromMap(env)
			cfg := FromEnv(e, "audit")
			require.NoError(t, e.Err())
			require.Equal(t, tt.want, cfg.Limits)
			err := cfg.Validate()
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				return
			}
			for _, want := range tt.errs {
				require.ErrorContains(t, err, want)
			}
		})
	}
	// Every variable is declared, so setting it does not stop the gateway
	// as a likely typo.
	require.Empty(t, config.Unknown([]string{"AUDITTRAIL_INGEST_WORKSPACE_RATE=1", "AUDITTRAIL_INGEST_WORKSPACE_BURST=1",
		"AUDITTRAIL_INGEST_CREDENTIAL_RATE=1", "AUDITTRAIL_INGEST_CREDENTIAL_BURST=1", "AUDITTRAIL_INGEST_RATE_MAX_KEYS=1"}))
	e := config.FromMap(map[string]string{"AUDITTRAIL_INGEST_WORKSPACE_RATE": "fast"})
	FromEnv(e, "audit")
	require.ErrorContains(t, e.Err(), `AUDITTRAIL_INGEST_WORKSPACE_RATE="fast": want an integer`)
}
