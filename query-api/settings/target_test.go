package settings

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/trackingplan"
)

func TestTheTargetHasAnOptionalName(t *testing.T) {
	f := newFixture(t)
	// A record saved before names existed loads, with no name.
	f.store.data[trackingplan.Key("ws_1", trackingplan.KindForwarding)] =
		[]byte(`{"workspace_id": "ws_1", "kind": "forwarding", "settings": {"enabled": false, "target": {"url": "https://api.example.com", "write_key": "wk_old_key_1234"}}}`)
	code, body := f.do(t, "GET", "/v1/workspaces/ws_1/forwarding", f.owner, "")
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body["target"], "name")

	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": false, "target": {"name": "Warehouse source", "url": "https://api.example.com"}}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, map[string]any{"name": "Warehouse source", "url": "https://api.example.com", "write_key": "****1234"}, body["target"],
		"the name is saved and the key kept (same URL)")
	f.rec.mu.Lock()
	ev := f.rec.events[len(f.rec.events)-1]
	f.rec.mu.Unlock()
	require.Equal(t, "Audit Forwarding Modified", ev.Event)
	require.JSONEq(t, `""`, string(ev.Changes["target.name"].Old))
	require.JSONEq(t, `"Warehouse source"`, string(ev.Changes["target.name"].New))

	for _, tt := range []struct{ name, body string }{
		{"too long", `{"target": {"name": "` + strings.Repeat("é", trackingplan.MaxTargetName+1) + `", "url": "https://api.example.com"}}`},
		{"control character", `{"target": {"name": "a\tb", "url": "https://api.example.com"}}`},
		{"not a string", `{"target": {"name": 5, "url": "https://api.example.com"}}`},
		{"null", `{"target": {"name": null, "url": "https://api.example.com"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner, tt.body)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Equal(t, "target.name", errField(body), body)
		})
	}
	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"target": {"name": "`+strings.Repeat("é", trackingplan.MaxTargetName)+`", "url": "https://api.example.com"}}`)
	require.Equal(t, http.StatusOK, code, "100 characters of two bytes each")
}

// storedForwarding reads the stored (unmasked) forwarding settings of ws.
func storedForwarding(t *testing.T, f *fixture, ws string) trackingplan.Forwarding {
	t.Helper()
	var fw trackingplan.Forwarding
	_, err := Load(f.store, ws, trackingplan.KindForwarding, &fw)
	require.NoError(t, err)
	return fw
}

func TestSavedTargetsKeepTheirKeysWithTheirURLs(t *testing.T) {
	var mu sync.Mutex
	var users []string
	var paths []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, _ := r.BasicAuth()
		mu.Lock()
		users, paths = append(users, user), append(paths, r.URL.Path)
		mu.Unlock()
	}))
	defer sink.Close()
	f := newFixture(t, allow(sink.Listener.Addr().String()))
	a, b := sink.URL+"/a", sink.URL+"/b"
	code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner, `{"enabled": true,
		"target": {"name": "Prod", "url": "`+a+`", "write_key": "wk_prod_key_1111"},
		"saved_targets": [{"name": "Staging", "url": "`+b+`", "write_key": "wk_staging_key_2222"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []any{map[string]any{"name": "Staging", "url": b, "write_key": "****2222"}}, body["saved_targets"], "keys masked")
	f.rec.mu.Lock()
	ev := f.rec.events[len(f.rec.events)-1]
	f.rec.mu.Unlock()
	require.JSONEq(t, `"`+b+`"`, string(ev.Changes["saved_targets.Staging"].New))
	require.JSONEq(t, `"****2222"`, string(ev.Changes["saved_targets.Staging.write_key"].New), "audited with the key masked")

	// Switch: Staging becomes the target and Prod is kept, neither key sent.
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner, `{"enabled": true,
		"target": {"name": "Staging", "url": "`+b+`"},
		"saved_targets": [{"name": "Prod", "url": "`+a+`", "write_key": "****1111"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	fw := storedForwarding(t, f, "ws_1")
	require.Equal(t, trackingplan.Target{Name: "Staging", URL: b, WriteKey: "wk_staging_key_2222"}, fw.Target)
	require.Equal(t, []trackingplan.Target{{Name: "Prod", URL: a, WriteKey: "wk_prod_key_1111"}}, fw.SavedTargets)

	// A key never follows a name to another URL.
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner, `{"enabled": true,
		"target": {"name": "Staging", "url": "`+b+`"},
		"saved_targets": [{"name": "Prod", "url": "`+sink.URL+`/elsewhere"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Empty(t, storedForwarding(t, f, "ws_1").SavedTargets[0].WriteKey)
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, `{"target": "Prod"}`)
	require.Equal(t, http.StatusConflict, code, body)
	require.Equal(t, "target", errField(body))

	// A test call for a saved target goes to its URL with its key.
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner, `{"enabled": true,
		"target": {"name": "Staging", "url": "`+b+`"},
		"saved_targets": [{"name": "Prod", "url": "`+a+`", "write_key": "wk_prod_key_3333"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, `{"target": "Prod"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, true, body["ok"])
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, ``)
	require.Equal(t, http.StatusOK, code, body)
	mu.Lock()
	require.Equal(t, []string{"wk_prod_key_3333", "wk_staging_key_2222"}, users)
	require.Equal(t, []string{"/a/v1/batch", "/b/v1/batch"}, paths)
	mu.Unlock()
	// A name no saved target has is a well-formed request the settings
	// cannot answer: 409, as with no target saved.
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, `{"target": "Nope"}`)
	require.Equal(t, http.StatusConflict, code, body)
	require.Equal(t, "target", errField(body))
	for _, tt := range []struct{ body, field string }{
		{`{"target": 5}`, "target"},
		{`{"target": null}`, "target"}, // not the current target: null is no name
		{`{"target": ["Prod"]}`, "target"},
		{`{"name": "Prod"}`, "name"},
		{`[]`, ""},
	} {
		code, body := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/test", f.owner, tt.body)
		require.Equal(t, http.StatusBadRequest, code, "%s: %v", tt.body, body)
		require.Equal(t, tt.field, errField(body), tt.body)
	}
}

func TestSavedTargetsAreValidated(t *testing.T) {
	f := newFixture(t)
	many := make([]string, trackingplan.MaxSavedTargets+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{"name": "t%d", "url": "https://t%d.example.com"}`, i, i)
	}
	for _, tt := range []struct{ name, saved, field string }{
		{"no name", `[{"url": "https://a.example.com"}]`, "saved_targets[0].name"},
		{"blank name", `[{"name": " ", "url": "https://a.example.com"}]`, "saved_targets[0].name"},
		{"twice", `[{"name": "A", "url": "https://a.example.com"}, {"name": "A", "url": "https://b.example.com"}]`, "saved_targets[1].name"},
		{"the current target's name", `[{"name": "Prod", "url": "https://a.example.com"}]`, "saved_targets[0].name"},
		{"no URL", `[{"name": "A"}]`, "saved_targets[0].url"},
		{"not http", `[{"name": "A", "url": "ftp://a.example.com"}]`, "saved_targets[0].url"},
		{"loopback", `[{"name": "A", "url": "http://127.0.0.1:9/"}]`, "saved_targets[0].url"},
		{"control in the name", `[{"name": "A\u001b", "url": "https://a.example.com"}]`, "saved_targets[0].name"},
		{"header injection in the key", `[{"name": "A", "url": "https://a.example.com", "write_key": "k\r\nX: 1"}]`, "saved_targets[0].write_key"},
		{"null entry", `[null]`, "saved_targets[0]"},
		{"null list", `null`, "saved_targets"},
		{"too many", `[` + strings.Join(many, ",") + `]`, "saved_targets"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
				`{"target": {"name": "Prod", "url": "https://api.example.com"}, "saved_targets": `+tt.saved+`}`)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Equal(t, tt.field, errField(body), body)
		})
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	require.Empty(t, f.rec.events, "nothing refused is recorded")
}
