package retention_test

// A late backdated event stored between the archive of its day and the
// delete of the day's expired rows: with a settle time, the delete leaves
// it, and a later run archives it before deleting it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func TestALateEventIsNotDeletedUnarchivedOnClickHouse18(t *testing.T) {
	t.Parallel()
	lateEventIsArchivedFirst(t, onClickHouse18(t))
}

func TestALateEventIsNotDeletedUnarchivedOnCurrentClickHouse(t *testing.T) {
	t.Parallel()
	lateEventIsArchivedFirst(t, onCurrentClickHouse(t))
}

// snapshotArchiver records, at each Archive call, the ids the day holds
// then (what an archive file would hold); inject runs once, after the
// first call has read them: a row stored between archive and delete.
type snapshotArchiver struct {
	srv    drillServer
	mu     sync.Mutex
	ids    map[string]bool
	calls  int
	inject func()
}

func (a *snapshotArchiver) Archive(ctx context.Context, ws string, day time.Time) error {
	rows, err := a.srv.conn.Query(ctx, fmt.Sprintf("SELECT id FROM %s.%s WHERE workspace_id = ? AND toDate(timestamp) = toDate(?)",
		a.srv.db, migrations.Table), ws, day.Unix())
	if err != nil {
		return err
	}
	defer rows.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		a.ids[id] = true
	}
	a.calls++
	if a.inject != nil {
		a.inject()
		a.inject = nil
	}
	return rows.Err()
}

func lateEventIsArchivedFirst(t *testing.T, srv drillServer) {
	ctx := context.Background()
	now := time.Now().UTC()
	require.NoError(t, retentionpolicy.Set(ctx, srv.conn, srv.db, retentionpolicy.Policy{Workspace: "ws_30", Days: 30, ChangedBy: "operator", ChangedAt: now.Add(-time.Hour)}))
	day := now.Add(-40 * 24 * time.Hour).Truncate(24 * time.Hour).Add(12 * time.Hour)
	ev := func(id string, ts time.Time) event.Event {
		return event.Event{ID: id, WorkspaceID: "ws_30", Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: "src_1"}}
	}
	stacktest.InsertEvents(t, srv.conn, srv.db, ev("first", day), ev("second", day.Add(time.Minute)))
	const settle = time.Second
	settled := func() {
		// The server's clock passes the settle time after the last insert.
		require.Eventually(t, func() bool {
			var ok uint8
			require.NoError(t, srv.conn.QueryRow(ctx, fmt.Sprintf("SELECT now() > max(inserted_at) + %d FROM %s.%s",
				int(settle.Seconds()), srv.db, migrations.Table)).Scan(&ok))
			return ok == 1
		}, time.Minute, 50*time.Millisecond)
	}
	settled()

	arch := &snapshotArchiver{srv: srv, ids: map[string]bool{}}
	arch.inject = func() { stacktest.InsertEvents(t, srv.conn, srv.db, ev("late", day.Add(2*time.Minute))) }
	enf := func() *retention.Enforcer {
		return retention.New(srv.conn, srv.db, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).SetArchiver(arch).SetSettle(settle)
	}
	d := &drill{t: t, srv: srv}
	stored := func() []string { return d.stored("ws_30")[migrations.Table] }

	_, err := enf().RunOnce(ctx)
	require.NoError(t, err)
	d.waitForMutations()
	require.Equal(t, 1, arch.calls)
	require.False(t, arch.ids["late"], "the late event was stored after its day's archive was read")
	require.Equal(t, []string{"late"}, stored(), "the archived rows are deleted; the late one, not archived, stays")

	settled()
	_, err = enf().RunOnce(ctx)
	require.NoError(t, err)
	d.waitForMutations()
	require.Equal(t, 2, arch.calls, "the next run archives the day again (a new part with the late event)")
	require.True(t, arch.ids["late"])
	require.Empty(t, stored(), "then deletes it")
	for _, l := range migrations.Lookups {
		require.Empty(t, d.stored("ws_30")[l.Table], l.Table)
	}

	// Without a settle time (the job's default in tests) the same
	// injection would be deleted unarchived: the gap this closes.
	arch2 := &snapshotArchiver{srv: srv, ids: map[string]bool{}}
	stacktest.InsertEvents(t, srv.conn, srv.db, ev("again", day))
	arch2.inject = func() { stacktest.InsertEvents(t, srv.conn, srv.db, ev("late2", day.Add(3*time.Minute))) }
	_, err = retention.New(srv.conn, srv.db, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).SetArchiver(arch2).RunOnce(ctx)
	require.NoError(t, err)
	d.waitForMutations()
	require.False(t, arch2.ids["late2"])
	require.Empty(t, stored(), "without a settle time the late event is deleted without having been archived")
}
