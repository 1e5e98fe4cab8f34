package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/auth"
)

// A workspace owner points forwarding and alerts at an address the platform
// keeps private (here a loopback listener standing for ClickHouse's HTTP
// port or a metadata service), through the binaries with the default
// (empty) allow-list: every literal spelling is a 400 naming the field, and
// a DNS name that resolves there is refused by the dialer of the API's test
// call and of the forwarder. The listener never sees a connection.
func TestNoRequestReachesARefusedAddress(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	fs := startForwardStack(t)
	tok, err := auth.Mint([]byte(jwtSecret), "usr_owner", "Owner", "owner@example.com",
		map[string]string{"ws_ssrf": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		status, _ := do(t, http.MethodGet, fs.api+"/v1/workspaces/ws_ssrf/forwarding", tok, "")
		return status == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "settings loaded")

	hosts := []string{
		"127.0.0.1", "127.1", "2130706433", "0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "127.0.0.1.",
		"[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "localhost", "LOCALHOST.", "api.localhost",
		"0.0.0.0", "0", "[::]", "169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
		"[fd00::1]", "[fe80::1%25eth0]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "224.0.0.1", "255.255.255.255",
	}
	for _, h := range hosts {
		u := fmt.Sprintf("http://%s:%d/?query_id=x", h, port)
		status, body := do(t, http.MethodPut, fs.api+"/v1/workspaces/ws_ssrf/forwarding", tok,
			fmt.Sprintf(`{"enabled": true, "target": {"url": %q, "write_key": "wk_ssrf_0123"}}`, u))
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", u, body)
		require.JSONEq(t, `"target.url"`, string(mustField(t, mustField(t, body, "error"), "field")), u)
		status, body = do(t, http.MethodPut, fs.api+"/v1/workspaces/ws_ssrf/alerts", tok,
			fmt.Sprintf(`{"enabled": true, "webhook_url": %q, "events": ["Warehouses Disabled"]}`, u))
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", u, body)
		require.JSONEq(t, `"webhook_url"`, string(mustField(t, mustField(t, body, "error"), "field")), u)
	}

	// A name that is not a literal address but resolves to loopback: the
	// machine's own host name (127.0.0.1 or 127.0.1.1 on Debian).
	name, err := os.Hostname()
	require.NoError(t, err)
	addrs, err := net.LookupIP(name)
	if err != nil || len(addrs) == 0 || !addrs[0].IsLoopback() {
		t.Logf("host name %q does not resolve to loopback (%v %v): connect-time refusal is covered by internal/egress's tests", name, addrs, err)
	} else {
		u := fmt.Sprintf("http://%s:%d/", name, port)
		status, body := do(t, http.MethodPut, fs.api+"/v1/workspaces/ws_ssrf/forwarding", tok,
			fmt.Sprintf(`{"enabled": true, "target": {"url": %q, "write_key": "wk_ssrf_0123"}}`, u))
		require.Equal(t, http.StatusOK, status, "a name is checked when it is dialled: %s", body)
		status, body = do(t, http.MethodPost, fs.api+"/v1/workspaces/ws_ssrf/forwarding/test", tok, "")
		require.Equal(t, http.StatusOK, status, string(body))
		require.Contains(t, string(body), "refused by policy")
		require.NotContains(t, strings.ToLower(string(body)), "127.0.0.1")

		ev := fmt.Sprintf(`{"workspace_id": "ws_ssrf", "event": "Source Created", "timestamp": %q,
			"actor": {"type": "user", "id": "usr_1"}, "resource": {"id": "src_1"}}`, time.Now().UTC().Format(time.RFC3339Nano))
		status, body = do(t, http.MethodPost, fs.ingest+"/v1/events", ingestToken, ev)
		require.Equal(t, http.StatusAccepted, status, string(body))
		require.Eventually(t, func() bool {
			return metricAbove(fs.forwarder, "audittrail_forwarder_dead_letters_total")
		}, 60*time.Second, 100*time.Millisecond, "the forwarder dead-letters the event it may not deliver")
	}
	require.Zero(t, accepted.Load(), "a refused address was connected to")
}
