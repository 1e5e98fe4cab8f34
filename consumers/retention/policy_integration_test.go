package retention_test

// The retention drill over real servers: workspaces with 30, 90 (the
// deployment's window) and 400 days and one on legal hold, events over
// 500 days, the retention job run with an injected clock, on ClickHouse
// 18.16 and on current ClickHouse (chdb). It reads through the API's store
// and checks the integrity log with verify's online check.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const drillOrigin = "audittrail.test"

// drillConn is a connection of either server.
type drillConn interface {
	Exec(ctx context.Context, query string, args ...any) error
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// drillServer is the database a drill runs in and how it stores logs
// (all of them in one insert per table: a partition of each of their
// days written once, not once per workspace).
type drillServer struct {
	conn       drillConn
	db         string
	insertLogs func(ctx context.Context, logs ...*logtest.Log) error
	// pageSize is the List page size the drill reads with, and every is
	// the days between two of a workspace's events (chdb answers a query
	// in tens of milliseconds: fewer events, in larger pages, there).
	pageSize int
	every    int
}

func onClickHouse18(t *testing.T) drillServer {
	conn, ch := stacktest.ClickHouse(t, 90)
	return drillServer{conn: conn, db: ch.Database, pageSize: 97, every: 1, insertLogs: func(ctx context.Context, logs ...*logtest.Log) error {
		return logtest.InsertAll(ctx, conn, ch.Database, logs...)
	}}
}

func onCurrentClickHouse(t *testing.T) drillServer {
	srv := chdbtest.Start(t)
	const db = "drill"
	_, err := migrations.Apply(context.Background(), srv, migrations.Options{Database: db, RetentionDays: 90})
	require.NoError(t, err)
	// The drill's log is inserted at once: 500 days of leaves, a partition
	// each (the sealer inserts recent leaves, a few days at a time).
	require.NoError(t, srv.Exec(context.Background(), "SET max_partitions_per_insert_block = 1000"))
	return drillServer{conn: srv, db: db, pageSize: 9, every: 25, insertLogs: func(ctx context.Context, logs ...*logtest.Log) error {
		return logtest.InsertHexAll(ctx, srv, db, logs...)
	}}
}

func TestRetentionDrillOnClickHouse18(t *testing.T) {
	t.Parallel()
	retentionDrill(t, onClickHouse18(t))
}

func TestRetentionDrillOnCurrentClickHouse(t *testing.T) {
	t.Parallel()
	retentionDrill(t, onCurrentClickHouse(t))
}

// drillWorkspace is one workspace of the drill and its events.
type drillWorkspace struct {
	id     string
	policy *retentionpolicy.Policy // nil: the deployment's window
	events []event.Event
	log    *logtest.Log
}

// drill holds one drill's clock, workspaces and readers.
type drill struct {
	t          *testing.T
	srv        drillServer
	now        time.Time
	cacheNow   time.Time // the policy cache's clock, moved to expire its copy
	key        logtest.Key
	workspaces []*drillWorkspace
	store      *store.Store
	archived   *recordingArchiver
	// policies are the policies in force, read again when they change.
	policies map[string]retentionpolicy.Policy
}

// recordingArchiver records what the enforcer archives; fail makes it
// fail for a workspace.
type recordingArchiver struct {
	mu   sync.Mutex
	days map[string]bool // "ws/YYYY-MM-DD"
	fail map[string]bool
}

func (a *recordingArchiver) Archive(_ context.Context, ws string, day time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail[ws] {
		return fmt.Errorf("archive of %s unavailable", ws)
	}
	if day != day.Truncate(24*time.Hour) {
		return fmt.Errorf("day %s is not a UTC midnight", day)
	}
	a.days[ws+"/"+day.Format(time.DateOnly)] = true
	return nil
}

func (a *recordingArchiver) archived() map[string]bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps(a.days)
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// newDrill stores the workspaces' events over 500 days (one every
// srv.every days, plus one an hour inside and one an hour outside each
// window), their sealed and signed logs, and the policies.
func newDrill(t *testing.T, srv drillServer) *drill {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	key, err := logtest.NewKey(drillOrigin)
	require.NoError(t, err)
	d := &drill{t: t, srv: srv, now: now, cacheNow: now, key: key, archived: &recordingArchiver{days: map[string]bool{}, fail: map[string]bool{}}}
	policy := func(ws string, days int, hold bool) *retentionpolicy.Policy {
		p := retentionpolicy.Policy{Workspace: ws, Days: days, Hold: hold, ChangedBy: "operator@example.com", ChangedAt: now.Add(-time.Hour)}
		if hold {
			p.HoldReason = "litigation 2026-17"
		}
		return &p
	}
	d.workspaces = []*drillWorkspace{
		{id: "ws_30", policy: policy("ws_30", 30, false)},
		{id: "ws_90"},
		{id: "ws_400", policy: policy("ws_400", 400, false)},
		{id: "ws_hold", policy: policy("ws_hold", 30, true)},
	}
	for wi, w := range d.workspaces {
		var times []time.Time
		for i := 0; i < 500; i += srv.every {
			times = append(times, now.Add(-time.Duration(i)*24*time.Hour-time.Duration(wi+1)*time.Hour))
		}
		for _, days := range []int{30, 90, 400} {
			cut := now.Add(-time.Duration(days) * 24 * time.Hour)
			times = append(times, cut.Add(time.Hour), cut.Add(-time.Hour))
		}
		slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) }) // oldest first: the log's order
		w.log = logtest.New(drillOrigin, w.id)
		for i, ts := range times {
			e := event.Event{ID: fmt.Sprintf("%s-%03d", w.id, i), WorkspaceID: w.id, Event: "Source Created", Category: "Sources",
				Timestamp: ts, ReceivedAt: ts, Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: fmt.Sprintf("src_%d", i%7)}}
			row := migrations.RowOf(&e)
			w.log.Append(row.TimestampNs, row.ID, leaf.Hash(&row))
			w.events = append(w.events, e)
		}
		_, err := w.log.Sign(key, now)
		require.NoError(t, err)
		if w.policy != nil {
			require.NoError(t, retentionpolicy.Set(ctx, srv.conn, srv.db, *w.policy))
		}
	}
	// Every workspace's events and logs in one insert per table: each
	// week (and day) partition is written once, as the writer and the
	// sealer write several workspaces' rows in one batch.
	var all []event.Event
	logs := make([]*logtest.Log, len(d.workspaces))
	for i, w := range d.workspaces {
		all, logs[i] = append(all, w.events...), w.log
	}
	stacktest.InsertEvents(t, srv.conn, srv.db, all...)
	require.NoError(t, srv.insertLogs(ctx, logs...))
	cache := retentionpolicy.NewCache(srv.conn, srv.db, 90, time.Minute, func() time.Time { return d.cacheNow })
	d.store = store.New(srv.conn, srv.db, 90, func() time.Time { return d.now }).WithPolicies(cache)
	return d
}

func (d *drill) enforcer() *retention.Enforcer {
	return d.enforcerOn(d.srv.conn)
}

func (d *drill) enforcerOn(conn retention.Conn) *retention.Enforcer {
	return retention.New(conn, d.srv.db, 90, func() time.Time { return d.now }, slog.New(slog.NewTextHandler(io.Discard, nil))).SetArchiver(d.archived)
}

// runOnce runs the retention job once and waits for its deletes.
func (d *drill) runOnce() {
	_, err := d.enforcer().RunOnce(context.Background())
	require.NoError(d.t, err)
	d.waitForMutations()
}

func (d *drill) waitForMutations() {
	require.Eventually(d.t, func() bool {
		var n uint64
		require.NoError(d.t, d.srv.conn.QueryRow(context.Background(), "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", d.srv.db).Scan(&n))
		return n == 0
	}, 2*time.Minute, 50*time.Millisecond)
}

// policy is w's policy in force in the drill (as stored in ClickHouse).
func (d *drill) policy(w *drillWorkspace) retentionpolicy.Policy {
	if d.policies == nil {
		var err error
		d.policies, err = retentionpolicy.All(context.Background(), d.srv.conn, d.srv.db)
		require.NoError(d.t, err)
	}
	if p, ok := d.policies[w.id]; ok {
		return p
	}
	return retentionpolicy.Default(w.id, 90)
}

// want returns the ids of w's events its policy keeps now, newest first.
func (d *drill) want(w *drillWorkspace) []string {
	p := d.policy(w)
	var out []string
	for _, e := range w.events {
		if p.Keeps(e.Timestamp, d.now) {
			out = append(out, e.ID)
		}
	}
	slices.Reverse(out)
	return out
}

// setPolicy changes a policy as the operator does, and moves the policy
// cache's clock past its max age (the store is not restarted).
func (d *drill) setPolicy(ws string, days int, hold bool) {
	p := retentionpolicy.Policy{Workspace: ws, Days: days, Hold: hold, ChangedBy: "operator@example.com", ChangedAt: time.Now()}
	if hold {
		p.HoldReason = "litigation 2026-17"
	}
	require.NoError(d.t, retentionpolicy.Set(context.Background(), d.srv.conn, d.srv.db, p))
	d.cacheNow = d.cacheNow.Add(time.Minute)
	d.policies = nil
}

// retentionDrill is item 5 of issue #21 but the archive: see the checks.
// Its first run is killed between copying the kept rows and dropping
// their week; its second has the archive fail for ws_90; the third
// completes.
func retentionDrill(t *testing.T, srv drillServer) {
	d := newDrill(t, srv)
	d.checkWindows("before the retention job")
	full := map[string]uint64{}
	for _, w := range d.workspaces {
		full[w.id] = d.hashes(w.id)
		require.EqualValues(t, tlog.StoredHashCount(int64(len(w.events))), full[w.id])
	}

	// Killed between copy and drop: nothing lost, nothing shown twice
	// (the copies in both tables collapse when read).
	_, err := d.enforcerOn(failingDrop{srv.conn}).RunOnce(context.Background())
	require.ErrorContains(t, err, "killed before")
	d.waitForMutations()
	require.NotEmpty(t, d.stored("ws_400")[migrations.KeptTable], "the kept rows were copied")
	d.checkWindows("after the interrupted run")
	d.checkLog("after the interrupted run")

	// The archive fails for ws_90: its expired days stay, with their weeks
	// (and so every workspace's rows in them), and the rest goes.
	d.archived.fail["ws_90"] = true
	d.archived.days = map[string]bool{} // the interrupted run archived the week it failed to drop
	_, err = d.enforcer().RunOnce(context.Background())
	require.NoError(t, err)
	d.waitForMutations()
	d.checkWindows("with ws_90's archive failing")
	require.Contains(t, d.stored("ws_90")[migrations.Table], d.workspace("ws_90").events[0].ID, "ws_90's oldest event waits for its archive")
	require.Empty(t, d.archivedOf("ws_90"), "a failed archive records nothing")
	d.archived.fail["ws_90"] = false

	d.runOnce()
	d.checkWindows("after the retention job")
	d.checkDisk("after the retention job")
	d.checkArchived("after the retention job")
	d.checkLog("after the retention job")
	require.Empty(t, d.archivedOf("ws_hold"), "nothing of a held workspace is archived: nothing expires")
	require.Equal(t, full["ws_hold"], d.hashes("ws_hold"), "a held workspace's log keeps every stored hash")
	require.Equal(t, full["ws_400"], d.hashes("ws_400"), "ws_400's first tile is live")
	if len(d.workspace("ws_30").events) > 300 { // its expired prefix holds a whole tile
		require.Less(t, d.hashes("ws_30"), full["ws_30"], "ws_30's expired tiles are reduced to their own hashes")
	}
	stored400 := d.stored("ws_400")
	require.NotEmpty(t, stored400[migrations.KeptTable], "ws_400's events past the deployment's window moved to the long-term table")
	require.NotEmpty(t, stored400[migrations.KeptLeavesTable], "with their leaves")

	// A second run changes nothing.
	before := map[string]map[string][]string{}
	for _, w := range d.workspaces {
		before[w.id] = d.stored(w.id)
	}
	d.runOnce()
	for _, w := range d.workspaces {
		require.Equal(t, before[w.id], d.stored(w.id), "%s: a second run deletes nothing more", w.id)
	}

	// The operator shortens ws_400 to 60 days and ws_hold to 1 day (still
	// held): the store serves the new windows without a restart, and the
	// next run deletes ws_400's rows past 60 days, none of ws_hold's.
	d.setPolicy("ws_400", 60, false)
	d.setPolicy("ws_hold", 1, true)
	d.checkWindows("after shortening")
	d.runOnce()
	d.checkWindows("after shortening and a run")
	d.checkDisk("after shortening and a run")
	d.checkArchived("after shortening and a run")
	d.checkLog("after shortening and a run")
	require.Empty(t, d.archivedOf("ws_hold"), "shortening a held workspace deletes nothing")
	require.Len(t, d.served("ws_hold"), len(d.workspace("ws_hold").events))

	// The hold is released: ws_hold's 1-day window applies at the next
	// run.
	d.setPolicy("ws_hold", 1, false)
	d.runOnce()
	d.checkWindows("after releasing the hold")
	d.checkDisk("after releasing the hold")
	d.checkArchived("after releasing the hold")
	d.checkLog("after releasing the hold")
	require.NotEmpty(t, d.archivedOf("ws_hold"))
}

// failingDrop is a connection whose partition drops fail: a run stopped
// between copying the kept rows and dropping their week.
type failingDrop struct{ retention.Conn }

func (f failingDrop) Exec(ctx context.Context, query string, args ...any) error {
	if strings.Contains(query, "DROP PARTITION") {
		return fmt.Errorf("killed before: %s", query)
	}
	return f.Conn.Exec(ctx, query, args...)
}
