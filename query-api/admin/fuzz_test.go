package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzAdminChanges sends any body to the admin API's changes: the answer
// is never a 5xx, and a refused change records and stores nothing.
func FuzzAdminChanges(f *testing.F) {
	for _, seed := range []string{`{"days": 400}`, `{"days": 0}`, `{"hold": true, "reason": "x"}`, `{"hold": false, "reason": ""}`,
		`{"day": "2026-08-01", "until": "2027-01-01", "reason": "r"}`, `{"days": 1e400}`, `{"days": 90, "days": 91}`, `{"reason": "\u0000"}`,
		`[]`, `null`, `{`, `{"days": 90} x`, "\xff\xfe"} {
		f.Add(uint8(0), seed)
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		s := newServer(t, nil)
		path := []string{"/admin/v1/workspaces/ws_1/retention", "/admin/v1/workspaces/ws_1/legal-hold", "/admin/v1/workspaces/ws_1/archive/restore"}[route%3]
		method := http.MethodPut
		if route%3 == 2 {
			method = http.MethodPost
		}
		rec := s.do(method, path, aliceToken, body)
		require.Less(t, rec.Code, 500, "%s %q: %s", path, body, rec.Body.String())
		if rec.Code != http.StatusOK {
			require.Empty(t, s.emitter.events, "%q", body)
			require.Zero(t, s.policies.sets, "%q", body)
		} else {
			require.Len(t, s.emitter.events, 2*s.policies.sets, "each stored change is recorded in both trails")
		}
	})
}
