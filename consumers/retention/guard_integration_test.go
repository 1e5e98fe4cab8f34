package retention_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// holdingArchiver places a legal hold on its workspace when first asked
// to archive it: the operator acts while a run is under way.
type holdingArchiver struct {
	t    *testing.T
	conn retentionpolicy.Conn
	db   string
	done bool
}

func (a *holdingArchiver) Archive(ctx context.Context, ws string, _ time.Time) error {
	if !a.done {
		a.done = true
		require.NoError(a.t, retentionpolicy.Set(ctx, a.conn, a.db, retentionpolicy.Policy{Workspace: ws, Days: 90, Hold: true,
			HoldReason: "placed during the run", ChangedBy: "ops", ChangedAt: time.Now()}))
	}
	return nil
}

// TestAHoldPlacedDuringARunStopsItsDrops: the run read the policies
// before the hold; it stops before dropping the week (ErrPoliciesChanged),
// and the next run, with the hold, keeps every row.
func TestAHoldPlacedDuringARunStopsItsDrops(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	now := time.Now().UTC()
	var evs []event.Event
	for _, age := range []time.Duration{120, 119, 1} {
		ts := now.Add(-age * 24 * time.Hour)
		evs = append(evs, event.Event{ID: "e" + ts.Format("0102"), WorkspaceID: "ws", Event: "Source Created", Category: "Sources",
			Timestamp: ts, ReceivedAt: ts, Actor: event.Actor{Type: "user", ID: "u"}})
	}
	stacktest.InsertEvents(t, conn, ch.Database, evs...)
	e := retention.New(conn, ch.Database, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).
		SetArchiver(&holdingArchiver{t: t, conn: conn, db: ch.Database})
	_, err := e.RunOnce(ctx)
	require.ErrorIs(t, err, retention.ErrPoliciesChanged)
	require.Len(t, stacktest.VisibleIDs(t, conn, ch.Database), 3, "nothing dropped by the old policies")

	_, err = e.RunOnce(ctx)
	require.NoError(t, err)
	var kept uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+ch.Database+"."+migrations.KeptTable+" WHERE workspace_id = 'ws'").Scan(&kept))
	require.EqualValues(t, 2, kept, "the held workspace's old rows moved to the long-term table before their week was dropped")
}

// TestTheJobRestoresTheTTLBackstopOnCurrentClickHouse: a binary from
// before migration 7 restarting sets the events tables' TTL back to its
// window; the next run of the job sets the backstop again.
func TestTheJobRestoresTheTTLBackstopOnCurrentClickHouse(t *testing.T) {
	t.Parallel()
	srv := chdbtest.Start(t)
	ctx := context.Background()
	const db = "ttl"
	_, err := migrations.Apply(ctx, srv, migrations.Options{Database: db, RetentionDays: 90})
	require.NoError(t, err)
	engine := func(table string) string {
		var s string
		require.NoError(t, srv.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&s))
		return s
	}
	tables := []string{migrations.Table}
	for _, l := range migrations.Lookups {
		tables = append(tables, l.Table)
	}
	for _, table := range tables {
		require.Contains(t, engine(table), "toIntervalDay(3650)", table)
		require.NoError(t, srv.Exec(ctx, "ALTER TABLE "+db+"."+table+" MODIFY TTL timestamp + toIntervalDay(90)")) // the old binary
	}
	_, err = retention.New(srv, db, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).RunOnce(ctx)
	require.NoError(t, err)
	for _, table := range tables {
		require.Contains(t, engine(table), "toIntervalDay(3650)", table)
		require.False(t, strings.Contains(engine(table), "toIntervalDay(90)"), table)
	}
}
