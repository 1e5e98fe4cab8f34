package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/auth"
)

// The preview reads the workspace's events as stored in ClickHouse (through
// the gateway, Kafka and the writer) and decides them with the forwarder's
// pipeline: draft filters and a draft plan are counted exactly, and
// nothing is saved.
func TestPreviewReadsTheStoredEvents(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	s := startStack(t)
	const ws = "ws_preview"
	tok, err := auth.Mint([]byte(jwtSecret), "usr_owner", "Owner", "owner@example.com",
		map[string]string{ws: "owner"}, time.Hour, time.Now())
	require.NoError(t, err)

	// 12 events: 6 Source Created (3 marked as tests, one of them with the
	// mark as the string "1"), 6 Warehouses Disabled (2 with a reason).
	now := time.Now().UTC()
	var batch []string
	for i := range 12 {
		name, props := "Source Created", `{}`
		switch {
		case i%2 == 0 && i < 6:
			props = `{"test": true, "n": 12345678901234567}`
		case i%2 == 0:
		case i < 4:
			name, props = "Warehouses Disabled", `{"reason": "cost"}`
		default:
			name = "Warehouses Disabled"
		}
		batch = append(batch, fmt.Sprintf(`{"id": "pv-%03d", "workspace_id": %q, "event": %q, "timestamp": %q,
			"actor": {"type": "user", "id": "usr_1", "name": "Ada"}, "resource": {"id": "r_%d"}, "properties": %s}`,
			i, ws, name, now.Add(-time.Duration(i)*time.Minute).Format(time.RFC3339Nano), i, props))
	}
	status, body := do(t, http.MethodPost, s.ingest+"/v1/events", ingestToken, `{"batch": [`+strings.Join(batch, ",")+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(body))
	require.Eventually(t, func() bool {
		status, body := do(t, http.MethodGet, s.api+"/v1/workspaces/"+ws+"/audit-events?limit=50", tok, "")
		return status == http.StatusOK && strings.Count(string(body), `"pv-0`) == 12
	}, 60*time.Second, 250*time.Millisecond, "the events are stored")

	preview := func(body string) map[string]any {
		t.Helper()
		var status int
		var out []byte
		require.Eventually(t, func() bool { // 503 until the settings are loaded
			status, out = do(t, http.MethodPost, s.api+"/v1/workspaces/"+ws+"/forwarding/preview", tok, body)
			return status != http.StatusServiceUnavailable
		}, 60*time.Second, 250*time.Millisecond)
		require.Equal(t, http.StatusOK, status, string(out))
		var m map[string]any
		require.NoError(t, json.Unmarshal(out, &m))
		return m
	}
	p := preview(`{}`)
	require.Equal(t, float64(12), p["events"])
	require.Equal(t, float64(12), p["kept"], "nothing saved: everything is forwarded")

	p = preview(`{"destination_filters": {"filters": [{"name": "tests", "enabled": true, "if": "event == 'Source Created' && has(properties.test) && properties.n == 12345678901234567", "action": "drop"}]},
		"tracking_plan": {"events": {"Warehouses Disabled": {"properties": {"type": "object", "required": ["reason"]}}}, "on_violation": "block"}}`)
	require.Equal(t, float64(12), p["events"])
	require.Equal(t, true, p["complete"])
	require.Equal(t, float64(7), p["dropped"], "3 tests (their large number read exactly) and 4 warehouses without a reason")
	require.Equal(t, float64(5), p["kept"])
	require.Equal(t, float64(4), p["violations"])
	require.Equal(t, map[string]any{"filter": float64(3), "violation": float64(4)}, p["dropped_by"])
	require.Equal(t, []any{map[string]any{"name": "tests", "dropped": float64(3)}}, p["filters"])
	dropped := p["examples"].(map[string]any)["dropped"].([]any)
	require.Equal(t, "pv-000", dropped[0].(map[string]any)["id"], "newest first")

	p = preview(`{"limit": 5}`)
	require.Equal(t, float64(5), p["events"])

	status, body = do(t, http.MethodPost, s.api+"/v1/workspaces/"+ws+"/forwarding/preview", tok, `{"destination_filters": {"filters": [{"name": "x", "enabled": true, "if": "event ==", "action": "drop"}]}}`)
	require.Equal(t, http.StatusBadRequest, status, string(body))
	require.Contains(t, string(body), `"field":"destination_filters.filters[0].if"`)
	status, body = do(t, http.MethodGet, s.api+"/v1/workspaces/"+ws+"/destination-filters", tok, "")
	require.Equal(t, http.StatusOK, status, string(body))
	require.JSONEq(t, `{"filters": []}`, string(body), "a draft is saved nowhere")
}
