package admin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/admin"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const holdOrigin = "audittrail.test"

// holdServer is the database the test runs in.
type holdServer struct {
	conn interface {
		admin.Conn
		QueryRow(ctx context.Context, query string, args ...any) driver.Row
	}
	db        string
	insertLog func(ctx context.Context, lg *logtest.Log) error
}

func TestAHoldStopsTheDeletesQueuedBeforeItOnClickHouse18(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	holdStopsQueuedDeletes(t, holdServer{conn: conn, db: ch.Database, insertLog: func(ctx context.Context, lg *logtest.Log) error {
		return lg.Insert(ctx, conn, ch.Database)
	}})
}

// holdStopsQueuedDeletes: the retention job queued deletes of two 30-day
// workspaces' expired rows (held back: the tables' merges are stopped); a
// hold is placed on one through the admin API (after its window was
// lengthened to 365 days without protection); once the deletes run, the
// held workspace's rows are all still there (events, lookup tables,
// leaves, long-term rows) and verify's online check proves them, the
// other's are gone, and the next run issues no delete of the held
// workspace.
func holdStopsQueuedDeletes(t *testing.T, srv holdServer) {
	ctx := context.Background()
	conn, db := srv.conn, srv.db
	now := time.Now().UTC()
	day := 24 * time.Hour
	key, err := logtest.NewKey(holdOrigin)
	require.NoError(t, err)
	var events []event.Event
	kept, err := conn.PrepareBatch(ctx, migrations.KeptInsert(db))
	require.NoError(t, err)
	for _, ws := range []string{"ws_held", "ws_other"} {
		require.NoError(t, retentionpolicy.Set(ctx, conn, db, retentionpolicy.Policy{Workspace: ws, Days: 30, ChangedBy: "operator", ChangedAt: now.Add(-time.Hour)}))
		lg := logtest.New(holdOrigin, ws)
		// In the long-term table (restored or kept by a longer policy once),
		// past the workspace's window; its leaf is still in the leaves
		// table (the deployment's window keeps its day).
		ts := now.Add(-60 * day)
		e := event.Event{ID: ws + "-kept", WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: "src_1"}}
		row := migrations.RowOf(&e)
		lg.Append(row.TimestampNs, row.ID, leaf.Hash(&row))
		require.NoError(t, kept.Append(migrations.KeptValues(&row, false, time.Time{})...))
		for i, age := range []time.Duration{45 * day, 40 * day, 10 * day} {
			ts := now.Add(-age)
			e := event.Event{ID: fmt.Sprintf("%s-%d", ws, i), WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
				Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: "src_1"}}
			row := migrations.RowOf(&e)
			lg.Append(row.TimestampNs, row.ID, leaf.Hash(&row))
			events = append(events, e)
		}
		_, err := lg.Sign(key, now)
		require.NoError(t, err)
		require.NoError(t, srv.insertLog(ctx, lg))
	}
	require.NoError(t, kept.Send())
	stacktest.InsertEvents(t, conn, db, events...)

	tables := []string{migrations.Table, migrations.LeavesTable, migrations.KeptTable}
	for _, l := range migrations.Lookups {
		tables = append(tables, l.Table)
	}
	merges := func(verb string) {
		for _, table := range tables {
			require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM %s MERGES %s.%s", verb, db, table)))
		}
	}
	merges("STOP")
	t.Cleanup(func() { merges("START") })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = retention.New(conn, db, 90, nil, quiet).RunOnce(ctx)
	require.NoError(t, err)
	pending := func() uint64 {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&n))
		return n
	}
	require.EqualValues(t, len(tables), pending(), "a delete is queued on every table")

	// Another instance (or an older release) lengthened ws_held's window
	// to 365 days meanwhile without stopping the queued deletes: the hold
	// must protect what the 30-day window the deletes follow would delete.
	require.NoError(t, retentionpolicy.Set(ctx, conn, db, retentionpolicy.Policy{Workspace: "ws_held", Days: 365, ChangedBy: "operator", ChangedAt: time.Now()}))

	ops, err := admin.ParseOperators([]string{"alice:" + aliceToken})
	require.NoError(t, err)
	s := &server{e: httpserver.New(httpserver.Options{Name: "admin"}), emitter: &fakeEmitter{}}
	admin.Register(s.e, admin.Options{Operators: ops, Policies: admin.NewClickHousePolicies(conn, db, 90), Emitter: s.emitter})
	rec := s.do(http.MethodPut, "/admin/v1/workspaces/ws_held/legal-hold", aliceToken, `{"hold": true, "reason": "case 9"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	merges("START")
	require.Eventually(t, func() bool { return pending() == 0 }, 2*time.Minute, 50*time.Millisecond)
	ids := func(table, ws string) []string {
		return stacktest.Strings(t, conn, fmt.Sprintf("SELECT DISTINCT id FROM %s.%s WHERE workspace_id = ? ORDER BY id", db, table), ws)
	}
	for _, table := range tables {
		if table == migrations.KeptTable {
			require.Equal(t, []string{"ws_held-kept"}, ids(table, "ws_held"), "%s: the held workspace keeps every row", table)
			require.Empty(t, ids(table, "ws_other"), "%s: the queued delete ran", table)
			continue
		}
		want := []string{"ws_held-0", "ws_held-1", "ws_held-2"}
		if table == migrations.LeavesTable {
			want = append(want, "ws_held-kept")
		}
		require.Equal(t, want, ids(table, "ws_held"), "%s: the held workspace keeps every row", table)
		require.Equal(t, []string{"ws_other-2"}, ids(table, "ws_other"), "%s: the queued delete ran", table)
	}
	// Each event once, and proven (the copies collapse with what is left).
	vs, err := verify.Verifiers([]string{key.Verifier})
	require.NoError(t, err)
	st := store.New(conn, db, 90, nil).WithPolicies(retentionpolicy.NewCache(conn, db, 90, time.Minute, nil))
	n, err := st.Count(ctx, store.Filter{WorkspaceID: "ws_held"})
	require.NoError(t, err)
	require.EqualValues(t, 4, n, "every event of the held workspace is served once")
	rep, err := verify.Online(ctx, verify.StoreSource{Log: store.NewLog(conn, db), Events: st},
		verify.OnlineOptions{WorkspaceID: "ws_held", Known: vs, Origin: holdOrigin, UnsealedAfter: now.UnixNano(), ReceivedBy: now.UnixNano()})
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Equal(t, 4, rep.Checked)

	// The next run deletes nothing of the held workspace.
	_, err = retention.New(conn, db, 90, nil, quiet).RunOnce(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pending() == 0 }, 2*time.Minute, 50*time.Millisecond)
	require.Len(t, ids(migrations.Table, "ws_held"), 3)
	require.Len(t, ids(migrations.KeptTable, "ws_held"), 1)

	// Placing the hold again protects again (a 409 that records nothing).
	rec = s.do(http.MethodPut, "/admin/v1/workspaces/ws_held/legal-hold", aliceToken, `{"hold": true, "reason": "case 9"}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
}
