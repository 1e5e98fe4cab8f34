package settings

import (
	"net/http"
	"strings"
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
