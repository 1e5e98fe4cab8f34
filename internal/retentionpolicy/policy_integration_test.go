package retentionpolicy_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestPoliciesOnClickHouse18 stores and reads policies on the real server
// (18.16).
func TestPoliciesOnClickHouse18(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	checkPolicies(t, conn, ch.Database)
}

// TestPoliciesOnCurrentClickHouse does the same on current ClickHouse
// (chdb).
func TestPoliciesOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	const db = "audittrail"
	_, err := migrations.Apply(context.Background(), srv, migrations.Options{Database: db, RetentionDays: 90})
	require.NoError(t, err)
	checkPolicies(t, srv, db)
}

// checkPolicies: no row is the default policy; the newest change wins
// whatever order the rows were written in; All lists explicit policies
// only; a Cache serves the change once its copy is older than its max age,
// without a restart; invalid policies write nothing.
func checkPolicies(t *testing.T, conn retentionpolicy.Conn, db string) {
	ctx := context.Background()
	p, err := retentionpolicy.Get(ctx, conn, db, "ws_a", 90)
	require.NoError(t, err)
	require.Equal(t, retentionpolicy.Default("ws_a", 90), p)

	clock := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	cache := retentionpolicy.NewCache(conn, db, 90, 10*time.Second, func() time.Time { return clock })
	got, err := cache.For(ctx, "ws_a")
	require.NoError(t, err)
	require.Equal(t, 90, got.Days)

	t0 := time.Date(2026, 12, 7, 10, 0, 0, 123, time.UTC)
	first := retentionpolicy.Policy{Workspace: "ws_a", Days: 30, ChangedBy: "ops", ChangedAt: t0.Add(time.Second)}
	later := retentionpolicy.Policy{Workspace: "ws_a", Days: 400, Hold: true, HoldReason: "case 17", ChangedBy: "ops@example.com", ChangedAt: t0}
	require.NoError(t, retentionpolicy.Set(ctx, conn, db, first))
	require.NoError(t, retentionpolicy.Set(ctx, conn, db, later), "written last by a host whose clock is behind")
	require.NoError(t, retentionpolicy.Set(ctx, conn, db, retentionpolicy.Policy{Workspace: "ws_b", Days: 30, ChangedBy: "ops", ChangedAt: t0}))

	p, err = retentionpolicy.Get(ctx, conn, db, "ws_a", 90)
	require.NoError(t, err)
	want := later
	want.ChangedAt = later.ChangedAt.Truncate(time.Second)
	require.Equal(t, want, p, "the change written last is in force")
	all, err := retentionpolicy.All(ctx, conn, db)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, 30, all["ws_b"].Days)
	require.NotContains(t, all, "ws_c")

	got, err = cache.For(ctx, "ws_a")
	require.NoError(t, err)
	require.Equal(t, 90, got.Days, "the cached copy is younger than its max age")
	clock = clock.Add(10 * time.Second)
	got, err = cache.For(ctx, "ws_a")
	require.NoError(t, err)
	require.Equal(t, want, got, "the change is served once the copy is old")
	got, err = cache.For(ctx, "ws_c")
	require.NoError(t, err)
	require.Equal(t, retentionpolicy.Default("ws_c", 90), got)

	err = retentionpolicy.Set(ctx, conn, db, retentionpolicy.Policy{Workspace: "ws_a", Days: 0, ChangedBy: "ops", ChangedAt: t0.Add(time.Hour)})
	require.ErrorIs(t, err, retentionpolicy.ErrInvalid)
	p, err = retentionpolicy.Get(ctx, conn, db, "ws_a", 90)
	require.NoError(t, err)
	require.Equal(t, want, p, "an invalid policy wrote nothing")
}
