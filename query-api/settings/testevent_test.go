package settings

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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

// TestTestCallsAreLimited: a test call to a slow target holds an API
// request for up to 10 s, so a workspace has one at a time and at most
// MaxTestCalls run in all; the others are answered 429 "busy" with
// Retry-After and the JSON envelope at once. Before, every call waited for
// the target.
func TestTestCallsAreLimited(t *testing.T) {
	arrived := make(chan string, 10)
	release := make(chan struct{})
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		arrived <- user
		<-release
	}))
	defer sink.Close()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	f := newFixture(t, allow(sink.Listener.Addr().String()), func(o *Options) { o.MaxTestCalls = 2 })
	tok := token(t, map[string]string{"ws_1": "owner", "ws_3": "owner", "ws_4": "owner"})
	for _, ws := range []string{"ws_1", "ws_3", "ws_4"} {
		code, body := f.do(t, "PUT", "/v1/workspaces/"+ws+"/forwarding", tok,
			`{"enabled": false, "target": {"url": "`+sink.URL+`", "write_key": "wk_`+ws+`"}}`)
		require.Equal(t, 200, code, body)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	type answer struct {
		code  int
		retry string
		body  map[string]any
		err   error
	}
	post := func(ws string) answer {
		req, _ := http.NewRequest("POST", f.srv.URL+"/v1/workspaces/"+ws+"/forwarding/test", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return answer{err: err}
		}
		defer resp.Body.Close()
		var m map[string]any
		err = json.NewDecoder(resp.Body).Decode(&m)
		return answer{code: resp.StatusCode, retry: resp.Header.Get("Retry-After"), body: m, err: err}
	}
	held := make(chan answer, 2)
	go func() { held <- post("ws_1") }()
	require.Equal(t, "wk_ws_1", <-arrived)

	busyAnswer := func(a answer, msg string) {
		t.Helper()
		require.NoError(t, a.err, "answered at once, not after the target")
		require.Equal(t, http.StatusTooManyRequests, a.code)
		require.Equal(t, "10", a.retry)
		e := a.body["error"].(map[string]any)
		require.Equal(t, "busy", e["code"])
		require.Contains(t, e["message"], msg)
	}
	busyAnswer(post("ws_1"), "for this workspace")

	go func() { held <- post("ws_3") }()
	require.Equal(t, "wk_ws_3", <-arrived, "another workspace is not held up")
	busyAnswer(post("ws_4"), "too many test calls")

	close(release)
	released = true
	for range 2 {
		a := <-held
		require.NoError(t, a.err)
		require.Equal(t, 200, a.code)
		require.Equal(t, true, a.body["ok"])
	}
	a := post("ws_4")
	require.NoError(t, a.err)
	require.Equal(t, 200, a.code, "slots are freed when calls end")
	require.Equal(t, "wk_ws_4", <-arrived)
}
