package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/auth"
)

// An owner turns forwarding and alerts on through the API; the change is
// itself in the trail, and events posted to the gateway reach the owner's
// source (as track calls) and chat webhook through the forwarder binary.
func TestForwardingThroughTheBinaries(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)

	var mu sync.Mutex
	var calls []map[string]any
	var alerts []string
	var auths []string
	sinkSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/hook" {
			var m map[string]string
			_ = json.NewDecoder(r.Body).Decode(&m)
			alerts = append(alerts, m["text"])
			return
		}
		user, _, _ := r.BasicAuth()
		auths = append(auths, user)
		var b struct {
			Batch []map[string]any `json:"batch"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		calls = append(calls, b.Batch...)
	}))
	defer sinkSrv.Close()
	// The sink is a loopback address: allowed by its exact ip:port.
	fs := startForwardStack(t, sinkSrv.Listener.Addr().String())
	ingest, api := fs.ingest, fs.api

	tok, err := auth.Mint([]byte(jwtSecret), "usr_owner", "Owner", "owner@example.com",
		map[string]string{"ws_fwd": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	var status int
	var body []byte
	require.Eventually(t, func() bool {
		status, body = do(t, http.MethodGet, api+"/v1/workspaces/ws_fwd/forwarding", tok, "")
		return status == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "settings loaded")
	require.JSONEq(t, `false`, string(mustField(t, body, "enabled")), "off by default")

	status, body = do(t, http.MethodPut, api+"/v1/workspaces/ws_fwd/forwarding", tok,
		fmt.Sprintf(`{"enabled": true, "target": {"url": %q, "write_key": "e2e-write-key-1234"}}`, sinkSrv.URL))
	require.Equal(t, http.StatusOK, status, string(body))
	require.NotContains(t, string(body), "e2e-write-key")
	status, body = do(t, http.MethodPut, api+"/v1/workspaces/ws_fwd/alerts", tok,
		fmt.Sprintf(`{"enabled": true, "webhook_url": %q, "events": ["Warehouses Disabled"]}`, sinkSrv.URL+"/hook"))
	require.Equal(t, http.StatusOK, status, string(body))

	// The change is in the trail.
	require.Eventually(t, func() bool {
		status, body := do(t, http.MethodGet, api+"/v1/workspaces/ws_fwd/audit-events?event="+url.QueryEscape("Audit Forwarding Enabled"), tok, "")
		return status == http.StatusOK && strings.Contains(string(body), `"usr_owner"`) && strings.Contains(string(body), `****1234`)
	}, 60*time.Second, 100*time.Millisecond, "Audit Forwarding Enabled recorded")

	now := time.Now().UTC()
	var batch []string
	for i := range 20 {
		name := []string{"Source Created", "Warehouses Disabled"}[i%2]
		batch = append(batch, fmt.Sprintf(`{"id": "fwd-%03d", "workspace_id": "ws_fwd", "event": %q,
			"timestamp": %q, "actor": {"type": "user", "id": "usr_1", "name": "Alice", "email": "alice@example.com"},
			"resource": {"id": "wh_%d", "name": "Snowflake"}}`, i, name, now.Format(time.RFC3339Nano), i))
	}
	status, body = do(t, http.MethodPost, ingest+"/v1/events", ingestToken, `{"batch": [`+strings.Join(batch, ",")+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(body))

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, c := range calls {
			if id, _ := c["messageId"].(string); strings.HasPrefix(id, "fwd-") {
				seen[id] = true
			}
		}
		return len(seen) == 20 && len(alerts) >= 10
	}, 60*time.Second, 100*time.Millisecond, "events forwarded and alerts posted")
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, auths, "e2e-write-key-1234", "HTTP Basic auth with the write key")
	require.Contains(t, alerts[len(alerts)-1], "Warehouses Disabled")
}
