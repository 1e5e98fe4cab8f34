package settings

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSendTestEventToTheSavedTarget(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	var user, pass string
	status := http.StatusOK
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, "/v1/batch", r.URL.Path)
		user, pass, _ = r.BasicAuth()
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		got = append(got, m)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error": "nope"}`))
	}))
	defer sink.Close()
	f := newFixture(t, allow(sink.Listener.Addr().String()))
	code, body := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, "")
	require.Equal(t, http.StatusConflict, code, "no target saved yet")
	require.Equal(t, "target.url", errField(body))

	// Forwarding may stay off: the test checks the target before enabling.
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": false, "target": {"url": "`+sink.URL+`", "write_key": "wk_secret_abcd"}}`)
	require.Equal(t, 200, code, body)
	f.rec.mu.Lock()
	recorded := len(f.rec.events)
	f.rec.mu.Unlock()

	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, "")
	require.Equal(t, 200, code, body)
	require.Equal(t, true, body["ok"])
	require.Equal(t, float64(200), body["status"])
	mu.Lock()
	require.Len(t, got, 1)
	require.Equal(t, "wk_secret_abcd", user)
	require.Empty(t, pass)
	call := got[0]["batch"].([]any)[0].(map[string]any)
	require.Equal(t, "track", call["type"])
	require.Equal(t, TestEventName, call["event"])
	require.Equal(t, "usr_1", call["userId"])
	require.NotEmpty(t, call["messageId"])
	require.Equal(t, "ws_1", call["properties"].(map[string]any)["workspace_id"])
	status = http.StatusUnauthorized
	mu.Unlock()

	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, "")
	require.Equal(t, 200, code)
	require.Equal(t, false, body["ok"])
	require.Equal(t, float64(401), body["status"])
	require.Equal(t, "the target answered HTTP 401", body["message"], "the answer's body is not shown")

	sink.Close()
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, "")
	require.Equal(t, 200, code)
	require.Equal(t, false, body["ok"])
	require.Equal(t, float64(0), body["status"])
	require.Equal(t, ReasonUnreachable, body["message"])

	code, _ = f.do(t, "POST", "/v1/workspaces/ws_2/forwarding/test", f.owner, "")
	require.Equal(t, http.StatusForbidden, code, "members may not")
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	require.Len(t, f.rec.events, recorded, "a test event is not an audit event")
}
