package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/query-api/auth"
)

type fakeRetention struct {
	policies map[string]retentionpolicy.Policy
	err      error
}

func (f fakeRetention) For(_ context.Context, ws string) (retentionpolicy.Policy, error) {
	if f.err != nil {
		return retentionpolicy.Policy{}, f.err
	}
	if p, ok := f.policies[ws]; ok {
		return p, nil
	}
	return retentionpolicy.Default(ws, 90), nil
}

func TestOwnersReadTheirRetention(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 30, 15, 500, time.UTC)
	r := fakeRetention{policies: map[string]retentionpolicy.Policy{
		"ws_long": {Workspace: "ws_long", Days: 400, ChangedBy: "alice"},
		"ws_held": {Workspace: "ws_held", Days: 30, Hold: true, HoldReason: "case 2026-114 (confidential)", ChangedBy: "alice"},
	}}
	e := httpserver.New(httpserver.Options{Name: "api"})
	New(Options{Events: &fakeReader{}, Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{}, Retention: r,
		Reg: prometheus.NewRegistry(), Now: func() time.Time { return now }}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	tok := token(t, map[string]string{"ws_long": "owner", "ws_held": "owner", "ws_def": "owner", "ws_member": "member"}, time.Hour)

	code, body := get(t, srv, "/v1/workspaces/ws_long/retention", tok)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"workspace_id": "ws_long", "days": float64(400), "legal_hold": false,
		"expires_before": now.AddDate(0, 0, -400).Truncate(time.Second).Format(time.RFC3339)}, body)

	code, body = get(t, srv, "/v1/workspaces/ws_held/retention", tok)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"workspace_id": "ws_held", "days": float64(30), "legal_hold": true, "expires_before": nil}, body,
		"the hold's reason and who placed it are the operator's")

	code, body = get(t, srv, "/v1/workspaces/ws_def/retention", tok)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, float64(90), body["days"])

	code, _ = get(t, srv, "/v1/workspaces/ws_member/retention", tok)
	require.Equal(t, http.StatusForbidden, code)
	code, _ = get(t, srv, "/v1/workspaces/ws_other/retention", tok)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = get(t, srv, "/v1/workspaces/ws_long/retention", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body = get(t, srv, "/v1/workspaces/ws_long/retention?days=1", tok)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "days", body["error"].(map[string]any)["field"])
}

func TestRetentionUnavailable(t *testing.T) {
	e := httpserver.New(httpserver.Options{Name: "api"})
	New(Options{Events: &fakeReader{}, Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{},
		Retention: fakeRetention{err: errors.New("clickhouse: timeout")}, Reg: prometheus.NewRegistry()}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	code, body := get(t, srv, "/v1/workspaces/ws_1/retention", token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.Equal(t, http.StatusInternalServerError, code)
	require.NotContains(t, body["error"].(map[string]any)["message"], "clickhouse")
}
