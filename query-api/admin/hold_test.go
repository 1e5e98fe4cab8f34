package admin_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/admin"
)

// guardedPolicies are fake policies whose ProtectHeld records its calls
// and fails while fail is set.
type guardedPolicies struct {
	*fakePolicies
	calls []admin.Policy
	fail  bool
}

func (g *guardedPolicies) ProtectHeld(_ context.Context, previous admin.Policy) ([]string, error) {
	g.calls = append(g.calls, previous)
	if g.fail {
		return nil, errors.New("clickhouse unreachable")
	}
	return []string{"audit_events"}, nil
}

func TestAHoldOrALongerWindowStopsQueuedDeletes(t *testing.T) {
	ops, err := admin.ParseOperators([]string{"alice:" + aliceToken})
	require.NoError(t, err)
	g := &guardedPolicies{fakePolicies: &fakePolicies{byWS: map[string]admin.Policy{}}, fail: true}
	s := &server{e: httpserver.New(httpserver.Options{Name: "admin"}), emitter: &fakeEmitter{}}
	admin.Register(s.e, admin.Options{Operators: ops, Policies: g, Emitter: s.emitter})
	const path = "/admin/v1/workspaces/ws_1/legal-hold"

	// The protection fails: the hold is in force all the same, and the
	// answer says so.
	rec := s.do(http.MethodPut, path, aliceToken, `{"hold": true, "reason": "case 1"}`)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	e := errorOf(t, rec)
	require.Contains(t, e.Error.Message, "the change is stored and in force")
	p, err := g.Get(t.Context(), "ws_1")
	require.NoError(t, err)
	require.True(t, p.Hold)
	require.Len(t, g.calls, 1)
	require.False(t, g.calls[0].Hold, "it protects by the policy the hold replaced")

	// Placing it again changes nothing, copies nothing (the retention job
	// repeats the copy while deletes from before the hold are unfinished).
	g.fail = false
	events := len(s.emitter.events)
	rec = s.do(http.MethodPut, path, aliceToken, `{"hold": true, "reason": "case 1"}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	require.Len(t, g.calls, 1)
	require.Len(t, s.emitter.events, events)

	// Releasing protects nothing; lengthening the window does, shortening
	// does not.
	rec = s.do(http.MethodPut, path, aliceToken, `{"hold": false, "reason": "closed"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Len(t, g.calls, 1)
	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", aliceToken, `{"days": 400}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Len(t, g.calls, 2)
	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/retention", aliceToken, `{"days": 30}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Len(t, g.calls, 2)
}
