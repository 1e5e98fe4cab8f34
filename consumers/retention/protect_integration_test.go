package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestTheJobProtectsAHoldItsAPIDidNot (18.16): a delete is queued (the
// table's merges are stopped); a hold is stored without the admin API's
// copy (an API that stopped between storing and copying); the next run
// copies the held rows, so the queued delete leaves them, and deletes
// the other workspace's as queued.
func TestTheJobProtectsAHoldItsAPIDidNot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, ch := stacktest.ClickHouse(t, 90)
	db := ch.Database
	now := time.Now().UTC()
	for _, ws := range []string{"ws_held", "ws_other"} {
		require.NoError(t, retentionpolicy.Set(ctx, conn, db, retentionpolicy.Policy{Workspace: ws, Days: 30, ChangedBy: "operator", ChangedAt: now.Add(-time.Hour)}))
		stacktest.InsertEvents(t, conn, db, lateEvent(ws, ws+"-old", now, 40*24*time.Hour), lateEvent(ws, ws+"-new", now, 10*24*time.Hour))
	}
	require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM STOP MERGES %s.%s", db, migrations.Table)))
	t.Cleanup(func() { _ = conn.Exec(ctx, fmt.Sprintf("SYSTEM START MERGES %s.%s", db, migrations.Table)) })
	enf := retention.New(conn, db, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err := enf.RunOnce(ctx)
	require.NoError(t, err)

	require.NoError(t, retentionpolicy.Set(ctx, conn, db, retentionpolicy.Policy{Workspace: "ws_held", Days: 30, Hold: true, HoldReason: "case 3", ChangedBy: "operator", ChangedAt: time.Now()}))
	_, err = enf.RunOnce(ctx)
	require.NoError(t, err)

	require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM START MERGES %s.%s", db, migrations.Table)))
	d := &drill{t: t, srv: drillServer{conn: conn, db: db}}
	d.waitForMutations()
	require.Equal(t, []string{"ws_held-new", "ws_held-old"}, d.stored("ws_held")[migrations.Table], "the held workspace keeps its rows")
	require.Equal(t, []string{"ws_other-new"}, d.stored("ws_other")[migrations.Table], "the queued delete ran")
}
