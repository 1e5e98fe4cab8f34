package store

import (
	stdjson "encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestEveryRowBecomesAServableEvent: whatever the changes and properties
// columns hold, the event encodes (as the API answers it) and keeps what
// can be read.
func TestEveryRowBecomesAServableEvent(t *testing.T) {
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	for _, tc := range []struct {
		name, changes, props   string
		wantChanges, wantProps string // JSON; "" = absent
	}{
		{"plain", `{"a":{"old":1,"new":2}}`, `{"k":"v"}`, `{"a":{"old":1,"new":2}}`, `{"k":"v"}`},
		{"empty", `{}`, `{}`, ``, ``},
		{"deep properties", `{}`, `{"a":` + deep + `}`, ``, `"{\"a\":` + deep + `}"`},
		{"invalid properties", `{}`, `{"a":`, ``, `"{\"a\":"`},
		{"invalid UTF-8", `{}`, "{\"a\":\"\xff\"}", ``, `"{\"a\":\"\uFFFD\"}"`},
		{"NUL in properties", `{}`, `{"a":"\u0000"}`, ``, `"{\"a\":\"\\u0000\"}"`},
		{"invalid changes", `{"a":`, `{}`, `{"":{"new":"{\"a\":"}}`, ``},
		{"changes not of changes", `{"a":[1]}`, `{}`, `{"":{"new":{"a":[1]}}}`, ``},
		{"changes an array", `[1]`, `{}`, `{"":{"new":[1]}}`, ``},
		{"deep change", `{"a":{"new":` + deep + `}}`, `{}`, `{"":{"new":"{\"a\":{\"new\":` + deep + `}}"}}`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := toEvent(&migrations.Row{ID: "evt_1", WorkspaceID: "ws_1", Changes: tc.changes, Properties: tc.props})
			b, err := stdjson.Marshal(e)
			require.NoError(t, err)
			var got map[string]stdjson.RawMessage
			require.NoError(t, stdjson.Unmarshal(b, &got))
			for field, want := range map[string]string{"changes": tc.wantChanges, "properties": tc.wantProps} {
				if want == "" {
					require.NotContains(t, got, field)
					continue
				}
				require.JSONEq(t, want, string(got[field]), field)
			}
		})
	}
}
