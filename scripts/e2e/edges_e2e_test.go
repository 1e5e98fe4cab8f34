package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/producers/ingest"
	"github.com/audittrail/audittrail/query-api/auth"
)

// TestHTTPEdgesOfTheBinaries checks the running gateway and API: stalled
// bodies do not starve the gateway beyond the documented timeouts, a
// spoofed X-Forwarded-For is not recorded, wrong methods and content types
// and malformed query strings get their 4xx in the JSON envelope, and every
// answer is no-store and nosniff.
func TestHTTPEdgesOfTheBinaries(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	st := startStack(t)
	tok, err := auth.Mint([]byte(jwtSecret), "usr_edge", "", "", map[string]string{"ws_edge": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)

	t.Run("answers", func(t *testing.T) {
		for _, c := range []struct {
			method, url, auth, contentType string
			status                         int
			field                          string
		}{
			{http.MethodPost, st.ingest + "/v1/events", "Bearer " + ingestToken, "text/plain", 415, "Content-Type"},
			{http.MethodGet, st.ingest + "/v1/events", "Bearer " + ingestToken, "", 405, ""},
			{http.MethodPost, st.api + "/v1/workspaces/ws_edge/audit-events", "Bearer " + tok, "", 405, ""},
			{http.MethodGet, st.api + "/v1/workspaces/ws_edge/audit-events?limit=%zz", "Bearer " + tok, "", 400, "limit"},
			{http.MethodGet, st.api + "/v1/workspaces/ws_edge/audit-events?limit=1;q=x", "Bearer " + tok, "", 400, "limit"},
			{http.MethodGet, st.api + "/nope", "", "", 404, ""},
			{http.MethodGet, st.api + "/v1/workspaces/ws_edge/audit-events", "bearer " + tok, "", 200, ""},
		} {
			req, err := http.NewRequest(c.method, c.url, strings.NewReader("{}"))
			require.NoError(t, err)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, c.status, resp.StatusCode, "%s %s: %s", c.method, c.url, b)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), c.url)
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), c.url)
			if c.status == 405 {
				require.NotEmpty(t, resp.Header.Get("Allow"))
			}
			if c.status >= 400 {
				var env struct {
					Error struct{ Code, Field string } `json:"error"`
				}
				require.NoError(t, json.Unmarshal(b, &env), string(b))
				require.NotEmpty(t, env.Error.Code)
				require.Equal(t, c.field, env.Error.Field)
			}
		}
	})

	t.Run("spoofed X-Forwarded-For is not recorded", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, st.api+"/v1/workspaces/ws_edge/audit-events.csv", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Forwarded-For", "198.51.100.77")
		req.Header.Set("X-Real-IP", "198.51.100.78")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		id := resp.Header.Get("X-Audit-Event-Id")
		require.NotEmpty(t, id)
		var stored struct {
			Context struct {
				IP string `json:"ip"`
			} `json:"context"`
		}
		require.Eventually(t, func() bool {
			status, body := do(t, http.MethodGet, st.api+"/v1/workspaces/ws_edge/audit-events/"+url.PathEscape(id), tok, "")
			return status == http.StatusOK && json.Unmarshal(body, &stored) == nil
		}, 60*time.Second, 200*time.Millisecond, "the export is stored")
		require.Equal(t, "127.0.0.1", stored.Context.IP)
	})

	t.Run("stalled bodies", func(t *testing.T) {
		// More stalled requests than the gateway has slots.
		const stalled = ingest.DefaultMaxConcurrent + 16
		addr := strings.TrimPrefix(st.ingest, "http://")
		conns := make([]net.Conn, stalled)
		for i := range conns {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			_, err = fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer %s\r\n"+
				"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"batch\": [", ingestToken)
			require.NoError(t, err)
			conns[i] = conn
		}
		start := time.Now()
		body := `{"workspace_id": "ws_edge", "event": "Source Created", "timestamp": "2026-11-25T00:00:00Z", "actor": {"type": "user", "id": "u"}}`
		require.Eventually(t, func() bool {
			status, _ := do(t, http.MethodPost, st.ingest+"/v1/events", ingestToken, body)
			return status == http.StatusAccepted
		}, 30*time.Second, 100*time.Millisecond, "a valid request is accepted again within 30 s")
		t.Logf("accepted again after %s", time.Since(start).Round(time.Millisecond))
		readTimeout := httpserver.DefaultLimits().ReadTimeout
		for i, conn := range conns {
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(readTimeout+5*time.Second)))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err, "stalled request %d is answered", i)
			resp.Body.Close()
			require.Contains(t, []int{http.StatusRequestTimeout, http.StatusServiceUnavailable}, resp.StatusCode)
			_, err = io.Copy(io.Discard, br)
			var netErr net.Error
			require.False(t, errors.As(err, &netErr) && netErr.Timeout(), "stalled connection %d is closed", i)
		}
		require.Less(t, time.Since(start), ingest.DefaultAdmitWait+ingest.DefaultBodyTimeout+5*time.Second,
			"stalled connections are answered and closed as their slot is freed or refused")
	})
}
