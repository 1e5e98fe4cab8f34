package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/auth"
)

func TestEventsTravelTheWholePath(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	s := startStack(t)
	ingest, api := s.ingest, s.api

	now := time.Now().UTC()
	var batch []string
	for i := range 120 {
		ws := []string{"ws_e2e", "ws_other"}[i%2]
		batch = append(batch, fmt.Sprintf(`{"id": "e2e-%03d", "workspace_id": %q, "event": "Warehouses Disabled",
			"timestamp": %q, "actor": {"type": "user", "id": "usr_1", "name": "Alice", "email": "alice@example.com"},
			"resource": {"id": "wh_%d", "name": "Snowflake"}, "changes": {"enabled": {"old": true, "new": false}},
			"context": {"ip": "198.51.100.7"}}`, i, ws, now.Add(-time.Duration(i)*time.Minute).Format(time.RFC3339Nano), i))
	}
	status, body := do(t, http.MethodPost, ingest+"/v1/events", ingestToken, `{"batch": [`+strings.Join(batch, ",")+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(body))
	require.JSONEq(t, `120`, string(mustField(t, body, "accepted")))

	// The same batch again (a client retry) must not duplicate anything.
	status, body = do(t, http.MethodPost, ingest+"/v1/events", ingestToken, `{"batch": [`+strings.Join(batch, ",")+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(body))

	tok, err := auth.Mint([]byte(jwtSecret), "usr_owner", "Owner", "owner@example.com",
		map[string]string{"ws_e2e": "owner", "ws_other": "member"}, time.Hour, time.Now())
	require.NoError(t, err)

	var ids []string
	require.Eventually(t, func() bool {
		ids = ids[:0]
		cursor := ""
		for {
			url := api + "/v1/workspaces/ws_e2e/audit-events?limit=25"
			if cursor != "" {
				url += "&cursor=" + cursor
			}
			status, body := do(t, http.MethodGet, url, tok, "")
			if status != http.StatusOK {
				return false
			}
			var page struct {
				Data []struct {
					ID       string `json:"id"`
					Category string `json:"category"`
				} `json:"data"`
				NextCursor *string `json:"next_cursor"`
			}
			require.NoError(t, json.Unmarshal(body, &page))
			for _, e := range page.Data {
				require.Equal(t, "Warehouses", e.Category)
				ids = append(ids, e.ID)
			}
			if page.NextCursor == nil {
				return len(ids) == 60
			}
			cursor = *page.NextCursor
		}
	}, 60*time.Second, 250*time.Millisecond, "the API shows the posted events")

	for i, id := range ids {
		require.Equal(t, fmt.Sprintf("e2e-%03d", i*2), id, "newest first, each once")
	}

	status, body = do(t, http.MethodGet, api+"/v1/workspaces/ws_e2e/audit-events/e2e-004", tok, "")
	require.Equal(t, http.StatusOK, status, string(body))
	var one map[string]any
	require.NoError(t, json.Unmarshal(body, &one))
	require.Equal(t, "Warehouses Disabled", one["event"])
	require.Equal(t, map[string]any{"enabled": map[string]any{"old": true, "new": false}}, one["changes"])
	require.Equal(t, "warehouse", one["resource"].(map[string]any)["type"])

	// A CSV export is recorded in the trail itself: through Kafka and the
	// writer, its "Audit Trail Exported" event shows in the workspace.
	status, body = do(t, http.MethodGet, api+"/v1/workspaces/ws_e2e/audit-events.csv?q=actor%3Aalice", tok, "")
	require.Equal(t, http.StatusOK, status, string(body))
	require.Equal(t, 61, strings.Count(string(body), "\n"), "a header and 60 rows")
	require.Eventually(t, func() bool {
		status, body := do(t, http.MethodGet, api+"/v1/workspaces/ws_e2e/audit-events?event=Audit+Trail+Exported", tok, "")
		return status == http.StatusOK && strings.Contains(string(body), `"id":"usr_owner"`) && strings.Contains(string(body), `"q":"actor:alice"`)
	}, 60*time.Second, 250*time.Millisecond, "the export is recorded in the trail")

	status, _ = do(t, http.MethodGet, api+"/v1/workspaces/ws_other/audit-events", tok, "")
	require.Equal(t, http.StatusForbidden, status, "a member does not see the trail")
	status, _ = do(t, http.MethodGet, api+"/v1/workspaces/ws_e2e/audit-events", "", "")
	require.Equal(t, http.StatusUnauthorized, status)
}
