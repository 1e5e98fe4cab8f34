package sealer_test

// Late kept events (older than the deployment's window, kept by their
// workspace's policy) and the sealer, on the real servers: their leaves
// survive the drop of their day, a resend of one whose leaf survives only
// in the long-term table gets no second leaf, and current traffic reads
// nothing from the long-term tables.

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	readstore "github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// keptCounter counts the keys the sealer looks up in the long-term
// tables and the leaves it stores there.
type keptCounter struct {
	*sealer.ClickHouseStore
	leafKeys, rowKeys, appended atomic.Int64
}

func (c *keptCounter) KeptLeaves(ctx context.Context, keys []sealer.Key) (map[sealer.Key]bool, error) {
	c.leafKeys.Add(int64(len(keys)))
	return c.ClickHouseStore.KeptLeaves(ctx, keys)
}

func (c *keptCounter) KeptRows(ctx context.Context, keys []sealer.Key) (map[sealer.Key]migrations.Row, error) {
	c.rowKeys.Add(int64(len(keys)))
	return c.ClickHouseStore.KeptRows(ctx, keys)
}

func (c *keptCounter) AppendKept(ctx context.Context, leaves []migrations.Leaf) error {
	c.appended.Add(int64(len(leaves)))
	return c.ClickHouseStore.AppendKept(ctx, leaves)
}

// hold places a legal hold on ws.
func (s *stack) hold(ws string) {
	require.NoError(s.t, retentionpolicy.Set(context.Background(), s.conn, s.db, retentionpolicy.Policy{Workspace: ws, Days: 30, Hold: true,
		HoldReason: "case 7", ChangedBy: "operator", ChangedAt: time.Now().UTC().Add(-time.Hour)}))
}

// keepingWriter runs a writer that stores what the policies keep past its
// 90-day window, in the events table and the long-term table, as the
// writer command does; tweak (when set) changes its configuration.
func (s *stack) keepingWriter(tweak func(*writer.Config)) (stop func()) {
	cfg := writer.Defaults()
	cfg.Topic, cfg.DeadLetterTopic, cfg.Group = s.events, s.dlq, s.writerGroup
	cfg.BatchSize, cfg.BatchAge = 200, 50*time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	w, err := writer.New(cfg, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, writer.NewClickHouseSink(s.conn, s.db).KeepLate(90, time.Now), quietLog(), nil, nil)
	require.NoError(s.t, err)
	w.KeepBy(retentionpolicy.NewCache(s.conn, s.db, 90, time.Second, nil).Bound(time.Minute, 5*time.Second))
	return run(s.t, w.Run)
}

// keptLeaves returns the long-term leaves table's leaves of ws.
func (s *stack) keptLeaves(ws string) []leafRow {
	rows, err := s.conn.Query(context.Background(), "SELECT leaf_index, timestamp_ns, id, leaf_hash FROM "+s.db+"."+migrations.KeptLeavesTable+
		" WHERE workspace_id = ? ORDER BY leaf_index LIMIT 1 BY leaf_index", ws)
	require.NoError(s.t, err)
	defer rows.Close()
	var out []leafRow
	for rows.Next() {
		var l leafRow
		require.NoError(s.t, rows.Scan(&l.index, &l.ts, &l.id, &l.hash))
		out = append(out, l)
	}
	require.NoError(s.t, rows.Err())
	return out
}

// dropDay drops, as the retention job does once it copied what it
// found, the leaves' day partition and the events' week partition (with
// its lookup tables') holding ts.
func (s *stack) dropDay(ts time.Time) {
	day := ts.UTC().Truncate(24 * time.Hour)
	require.NoError(s.t, s.conn.Exec(context.Background(), fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID '%s'", s.db, migrations.LeavesTable, day.Format("20060102"))))
	require.Zero(s.t, count(s.t, s, migrations.LeavesTable, ts), "the day's leaves are dropped")
	s.dropWeek(ts)
}

// dropWeek drops the events' week partition holding ts (and its lookup
// tables'), as the retention job does once it copied the kept rows.
func (s *stack) dropWeek(ts time.Time) {
	ctx := context.Background()
	day := ts.UTC().Truncate(24 * time.Hour)
	week := fmt.Sprint(day.AddDate(0, 0, -((int(day.Weekday())+6)%7)).Unix() / 86400)
	tables := []string{migrations.Table}
	for _, l := range migrations.Lookups {
		tables = append(tables, l.Table)
	}
	for _, table := range tables {
		require.NoError(s.t, s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID '%s'", s.db, table, week)))
	}
	require.Zero(s.t, count(s.t, s, migrations.Table, ts), "the week's events are dropped")
}

func count(t *testing.T, s *stack, table string, ts time.Time) uint64 {
	var n uint64
	require.NoError(t, s.conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM %s.%s WHERE timestamp_ns = ?", s.db, table), ts.UnixNano()).Scan(&n))
	return n
}

// verifyOnline runs verify's online check of ws as the API serves it
// (the policies applied) and returns its report: every row received
// until now must be sealed (the tests wait for their leaves first).
func (s *stack) verifyOnline(ws string) verify.Report {
	ctx := context.Background()
	vs, err := verify.Verifiers([]string{s.vkey})
	require.NoError(s.t, err)
	st := readstore.New(s.conn, s.db, 90, nil).WithPolicies(retentionpolicy.NewCache(s.conn, s.db, 90, time.Minute, nil))
	src := verify.StoreSource{Log: readstore.NewLog(s.conn, s.db), Events: st}
	rep, err := verify.Online(ctx, src, verify.OnlineOptions{WorkspaceID: ws, Known: vs, Origin: "audittrail.local",
		UnsealedAfter: time.Now().UnixNano(), ReceivedBy: time.Now().Add(time.Minute).UnixNano()})
	require.NoError(s.t, err)
	return rep
}

// waitSize waits until ws's latest checkpoint has size n.
func (s *stack) waitSize(ws string, n uint64) {
	require.Eventually(s.t, func() bool { size, _ := s.latest(ws); return size == n }, 60*time.Second, 100*time.Millisecond,
		"%s: a checkpoint of size %d", ws, n)
}

// TestALateKeptEventSealedJustBeforeItsDayIsDroppedKeepsItsLeaf: a held
// workspace's event 200 days old is stored (events and long-term table)
// and sealed; then its leaves' day and its events' week are dropped
// without a copy, as when the sealer wrote the leaf between the retention
// job's last settle check of the day and its DROP PARTITION. The leaf
// survives in the long-term leaves table and verify's online check
// proves both events. A sealer whose window does not reach the event
// (the behaviour before: the leaf in audit_log_leaves only) loses it,
// and verify reports the event without its leaf.
func TestALateKeptEventSealedJustBeforeItsDayIsDroppedKeepsItsLeaf(t *testing.T) {
	for _, tc := range []struct {
		name string
		days int // the sealer's window
		kept bool
	}{{"the deployment's window", 90, true}, {"a window past the event", 3650, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			s.hold("ws_hold")
			defer s.keepingWriter(nil)()
			defer s.sealerWith(nil, nil, func(c *sealer.Config) { c.RetentionDays = tc.days })()
			late := time.Now().UTC().Add(-200 * 24 * time.Hour)
			s.send(record(t, s.events, "ws_hold", "late", late), record(t, s.events, "ws_hold", "now", time.Now().UTC().Add(-time.Minute)))
			s.sealed([]string{"ws_hold"}, 60*time.Second, "ws_hold/late", "ws_hold/now")
			var n uint64
			require.NoError(t, s.conn.QueryRow(context.Background(), "SELECT count() FROM "+s.db+"."+migrations.KeptTable+" WHERE id = 'late'").Scan(&n))
			require.Positive(t, n, "the writer stored the late event in the long-term table too")
			leaves, kept := s.leaves("ws_hold"), s.keptLeaves("ws_hold")
			require.Len(t, leaves, 2)
			if !tc.kept {
				require.Empty(t, kept)
			} else {
				require.Len(t, kept, 1, "the late event's leaf only")
				for _, l := range leaves {
					if l.id == "late" {
						require.Equal(t, l, kept[0], "the same leaf row")
					}
				}
			}
			require.Empty(t, s.verifyOnline("ws_hold").Problems, "before the drop")

			s.dropDay(late)
			rep := s.verifyOnline("ws_hold")
			if tc.kept {
				require.Empty(t, rep.Problems, "the leaf survived the drop")
				require.Equal(t, 2, rep.Checked)
			} else {
				require.Len(t, rep.Problems, 2, "the late event's leaf is gone: %v", rep.Problems)
				require.Contains(t, rep.Problems[0], "row late")
				require.Contains(t, rep.Problems[0], "present without a leaf")
				require.Equal(t, "1 leaves: missing with their leaf rows (removed, or expired by retention: not provable)", rep.Problems[1])
			}
		})
	}
}

// TestAResendOfAKeptEventWhoseLeafIsOnlyInTheLongTermTableGetsNoSecondLeaf:
// a held workspace's late event is sealed, its leaves' day dropped (the
// leaf survives in the long-term leaves table), then resent to a new
// sealer (nothing in memory) after more events than the sealer searches
// for orphans (an index with stored hashes and no leaf row, which an
// identical resend would take back): it gets no second leaf, and verify
// proves the log. A sealer whose window does not reach the event gives
// it one.
func TestAResendOfAKeptEventWhoseLeafIsOnlyInTheLongTermTableGetsNoSecondLeaf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		days   int // the second sealer's window
		leaves uint64
	}{{"the deployment's window", 90, 7}, {"a window past the event", 3650, 8}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			s.hold("ws_hold")
			defer s.keepingWriter(nil)()
			stop := s.sealer(nil)
			late := record(t, s.events, "ws_hold", "late", time.Now().UTC().Add(-200*24*time.Hour))
			recs := []*kgo.Record{late}
			for i := range 5 {
				recs = append(recs, record(t, s.events, "ws_hold", fmt.Sprint("c", i), time.Now().UTC().Add(-time.Minute)))
			}
			s.send(recs...)
			s.waitSize("ws_hold", 6)
			stop()
			ctx := context.Background()
			day := time.Now().UTC().Add(-200 * 24 * time.Hour).Truncate(24 * time.Hour)
			require.NoError(t, s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID '%s'", s.db, migrations.LeavesTable, day.Format("20060102"))))
			require.Len(t, s.leaves("ws_hold"), 5, "the late leaf is in the long-term table only")
			require.Len(t, s.keptLeaves("ws_hold"), 1)

			store := &keptCounter{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
			// A round of one record searches the last 4 indexes for orphans:
			// the late leaf's index 0 is not among them.
			defer s.sealerWith(store, nil, func(c *sealer.Config) { c.RetentionDays, c.BatchSize = tc.days, 1 })()
			s.send(&kgo.Record{Topic: late.Topic, Key: late.Key, Value: late.Value}, record(t, s.events, "ws_hold", "second", time.Now().UTC()))
			// "second" follows the resend on the workspace's partition: once
			// it has its leaf, the resend was decided.
			require.Eventually(t, func() bool {
				for _, l := range s.leaves("ws_hold") {
					if l.id == "second" {
						return true
					}
				}
				return false
			}, 60*time.Second, 100*time.Millisecond)
			s.waitSize("ws_hold", tc.leaves)
			var n uint64
			require.NoError(t, s.conn.QueryRow(ctx, fmt.Sprintf("SELECT uniqExact(leaf_index) FROM (SELECT leaf_index FROM %s.%s WHERE id = 'late' UNION ALL SELECT leaf_index FROM %s.%s WHERE id = 'late')",
				s.db, migrations.LeavesTable, s.db, migrations.KeptLeavesTable)).Scan(&n))
			if tc.leaves == 7 {
				require.EqualValues(t, 1, n, "the late id has one leaf")
				require.EqualValues(t, 1, store.leafKeys.Load(), "the resend's id was looked up in the long-term leaves")
				rep := s.verifyOnline("ws_hold")
				require.Empty(t, rep.Problems)
				require.Equal(t, 7, rep.Checked)
			} else {
				require.Zero(t, store.leafKeys.Load())
				require.EqualValues(t, 2, n, "the late id got a second leaf")
			}
		})
	}
}

// TestCurrentTrafficReadsNothingFromTheLongTermTablesOnTheRealServers: the ordinary path
// (current and backdated events inside the window, resends, dead letters,
// expired events) looks nothing up in the long-term tables and stores
// nothing there; a late kept event then stores its one leaf there and
// looks its own id up, once.
func TestCurrentTrafficReadsNothingFromTheLongTermTablesOnTheRealServers(t *testing.T) {
	s := newStack(t)
	defer s.keepingWriter(nil)()
	store := &keptCounter{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
	defer s.sealer(store)()
	workspaces := []string{"ws_a", "ws_b"}
	s.traffic(workspaces, 100, "one")
	visible := s.sealed(workspaces, 60*time.Second)
	for _, ws := range workspaces {
		s.checkLog(ws, visible)
	}
	require.Equal(t, 1, visible["ws_a/one-backdated"], "a backdated event inside the window was sealed")
	require.Zero(t, store.leafKeys.Load()+store.rowKeys.Load()+store.appended.Load(), "nothing read from or written to the long-term tables")

	s.hold("ws_hold")
	s.send(record(t, s.events, "ws_hold", "late", time.Now().UTC().Add(-200*24*time.Hour)))
	s.sealed([]string{"ws_hold"}, 60*time.Second, "ws_hold/late")
	require.EqualValues(t, 1, store.appended.Load(), "the late event's leaf")
	require.EqualValues(t, 1, store.leafKeys.Load(), "its id looked up")
	require.Zero(t, store.rowKeys.Load(), "its row is the record's: nothing read back")
	require.Len(t, s.keptLeaves("ws_hold"), 1)
}

// TestALateKeptEventReadBackAfterItsWeekWasDroppedIsSealed: a held
// workspace's event 200 days old, stored by a writer that does not record
// its offsets (the sealer reads it back), whose week is copied and
// dropped before the sealer reads it (a sealer stopped longer than the
// settle time): the sealer reads it back from the long-term table and
// seals it, and verify proves it. A sealer whose window does not reach
// the event leaves it without a leaf.
func TestALateKeptEventReadBackAfterItsWeekWasDroppedIsSealed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		days   int
		leaves uint64
	}{{"the deployment's window", 90, 2}, {"a window past the event", 3650, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t)
			s.hold("ws_hold")
			defer s.keepingWriter(func(c *writer.Config) { c.RecordOffsets = false })()
			late := time.Now().UTC().Add(-200 * 24 * time.Hour)
			s.send(record(t, s.events, "ws_hold", "late", late))
			require.Eventually(t, func() bool { return count(t, s, migrations.KeptTable, late) > 0 }, 30*time.Second, 50*time.Millisecond)
			s.dropWeek(late)

			store := &keptCounter{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
			defer s.sealerWith(store, nil, func(c *sealer.Config) { c.RetentionDays = tc.days })()
			s.send(record(t, s.events, "ws_hold", "now", time.Now().UTC().Add(-time.Minute)))
			require.Eventually(t, func() bool {
				for _, l := range s.leaves("ws_hold") {
					if l.id == "now" {
						return true
					}
				}
				return false
			}, 60*time.Second, 100*time.Millisecond, "the event after the late one is sealed: the late one was decided")
			s.waitSize("ws_hold", tc.leaves)
			rep := s.verifyOnline("ws_hold")
			if tc.leaves == 2 {
				require.EqualValues(t, 1, store.rowKeys.Load(), "the late key was read from the long-term table")
				require.Len(t, s.keptLeaves("ws_hold"), 1)
				require.Empty(t, rep.Problems)
				require.Equal(t, 2, rep.Checked)
			} else {
				require.Zero(t, store.rowKeys.Load())
				require.Len(t, rep.Problems, 1, "the late event is served without a leaf: %v", rep.Problems)
				require.Contains(t, rep.Problems[0], "late")
			}
		})
	}
}
