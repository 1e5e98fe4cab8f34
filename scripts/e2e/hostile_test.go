package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/query-api/auth"
)

// TestHostileInputsGet4xxNever5xx throws a table of hostile inputs at the
// running gateway and API: SQL fragments, huge strings, invalid UTF-8, deep
// JSON nesting, negative and huge limits, bogus cursors. Every answer must
// be a 4xx (or a 2xx where the input is merely odd), never a 5xx, and both
// servers must still answer afterwards.
func TestHostileInputsGet4xxNever5xx(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	st := startStack(t)
	ingest, api := st.ingest, st.api
	tok, err := auth.Mint([]byte(jwtSecret), "usr_1", "", "", map[string]string{"ws_1": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)

	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	huge := strings.Repeat("x", 3<<20)
	ev := func(extra string) string {
		return `{"workspace_id": "ws_1", "event": "Source Created", "timestamp": "2026-11-25T00:00:00Z", "actor": {"type": "user", "id": "u"}` + extra + `}`
	}
	ingestCases := []struct{ name, body string }{
		{"sql in workspace", strings.Replace(ev(""), `"ws_1"`, `"ws_1'; DROP TABLE audit_events; --"`, 1)},
		{"sql in event", strings.Replace(ev(""), `"Source Created"`, `"Source Created' OR '1'='1"`, 1)},
		{"invalid utf-8", strings.Replace(ev(""), `"u"`, "\"\xff\xfe\"", 1)},
		{"deep nesting in properties", ev(`, "properties": ` + deep)},
		{"deep nesting body", deep},
		{"huge string", ev(`, "properties": {"x": "` + huge + `"}`)},
		{"null bytes", strings.Replace(ev(""), `"u"`, `"u\u0000"`, 1)},
		{"number as timestamp", strings.Replace(ev(""), `"2026-11-25T00:00:00Z"`, `1e309`, 1)},
		{"empty", ""},
		{"array", "[[[[]]]]"},
		{"batch of nulls", `{"batch": [null, null]}`},
		{"duplicate keys", `{"workspace_id": "a", "workspace_id": "b"}`},
	}
	for _, c := range ingestCases {
		status, body := do(t, http.MethodPost, ingest+"/v1/events", ingestToken, c.body)
		require.GreaterOrEqual(t, status, 400, "%s: %s", c.name, body)
		require.Less(t, status, 500, "%s: %s", c.name, body)
	}

	bogusCursor := url.QueryEscape("99999999999999999999999999.x") // past int64 nanoseconds
	apiCases := []string{
		"limit=-1", "limit=0", "limit=99999999999999999999", "limit=1e3", "limit=%00",
		"cursor=" + bogusCursor, "cursor=!!!", "cursor=" + strings.Repeat("A", 5000),
		"event=" + url.QueryEscape("x' OR 1=1 --"), "actor_id=" + url.QueryEscape("'; DROP DATABASE audittrail; --"),
		"resource_id=" + strings.Repeat("r", 10000), "since=" + url.QueryEscape("2026-02-30T00:00:00Z"),
		"until=" + url.QueryEscape("9999-12-31T23:59:59Z"), "since=-1", "actor_type=" + url.QueryEscape("\xff"),
		"category=%ff%fe", strings.Repeat("event=a&", 500),
	}
	for _, q := range apiCases {
		status, body := do(t, http.MethodGet, api+"/v1/workspaces/ws_1/audit-events?"+q, tok, "")
		require.Less(t, status, 500, "%s: %s", q, body)
		if status >= 400 {
			require.Contains(t, string(body), `"field"`, "%s names the field: %s", q, body)
		}
	}
	for _, path := range []string{
		"/v1/workspaces/" + url.PathEscape("ws_1' OR '1'='1") + "/audit-events",
		"/v1/workspaces/ws_1/audit-events/" + url.PathEscape("x' UNION SELECT 1 --"),
		"/v1/workspaces/ws_1/audit-events/" + strings.Repeat("i", 5000),
		"/v1/workspaces/%ff/audit-events",
	} {
		status, body := do(t, http.MethodGet, api+path, tok, "")
		require.GreaterOrEqual(t, status, 400, "%s: %s", path, body)
		require.Less(t, status, 500, "%s: %s", path, body)
	}
	for _, bad := range []string{"", "x", strings.Repeat("a.", 5000), "e30.e30.", fmt.Sprintf("%s.%s.sig", huge[:1000], huge[:1000])} {
		status, _ := do(t, http.MethodGet, api+"/v1/workspaces/ws_1/audit-events", bad, "")
		require.Equal(t, http.StatusUnauthorized, status)
	}

	// Both servers are still up.
	waitReady(t, ingest)
	waitReady(t, api)
}
