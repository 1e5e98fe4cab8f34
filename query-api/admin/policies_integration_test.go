package admin_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/admin"
)

// TestChangesOnClickHouse18 sets days, places and releases a hold through
// the admin API on the real policy table (18.16): each change is stored
// and read back (whole-second times, versions), none is taken for a
// concurrent one, and the hold survives a days change.
func TestChangesOnClickHouse18(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	ops, err := admin.ParseOperators([]string{"alice:" + aliceToken})
	require.NoError(t, err)
	s := &server{e: httpserver.New(httpserver.Options{Name: "admin"}), emitter: &fakeEmitter{}}
	clock := time.Now().UTC()
	admin.Register(s.e, admin.Options{Operators: ops, Policies: admin.NewClickHousePolicies(conn, ch.Database, 90), Emitter: s.emitter,
		Now: func() time.Time { clock = clock.Add(300 * time.Millisecond); return clock }})
	for _, step := range []struct{ path, body string }{
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 400}`},
		{"/admin/v1/workspaces/ws_1/legal-hold", `{"hold": true, "reason": "case 1"}`},
		{"/admin/v1/workspaces/ws_1/retention", `{"days": 30}`},
	} {
		rec := s.do(http.MethodPut, step.path, aliceToken, step.body)
		require.Equal(t, http.StatusOK, rec.Code, "%s %s: %s", step.path, step.body, rec.Body.String())
	}
	p, err := retentionpolicy.Get(t.Context(), conn, ch.Database, "ws_1", 90)
	require.NoError(t, err)
	require.Equal(t, 30, p.Days)
	require.True(t, p.Hold, "the days change kept the hold")
	rec := s.do(http.MethodPut, "/admin/v1/workspaces/ws_1/legal-hold", aliceToken, `{"hold": false, "reason": "closed"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	p, err = retentionpolicy.Get(t.Context(), conn, ch.Database, "ws_1", 90)
	require.NoError(t, err)
	require.False(t, p.Hold)
	require.Equal(t, 30, p.Days)
	require.Len(t, s.emitter.events, 8, "four changes, each in both trails")
}
