package retention_test

// Events already older than the deployment's window when they arrive
// (a backfill, a consumer lag): the writer stores those their workspace's
// policy keeps, in a week the retention job had dropped, and the job
// keeps them through its next runs.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// lateEvent is an event of ws whose time is age before now.
func lateEvent(ws, id string, now time.Time, age time.Duration) event.Event {
	ts := now.Add(-age)
	return event.Event{ID: id, WorkspaceID: ws, Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: now,
		Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: "src_1"}}
}

// runWriter runs a writer of the events topic into database, keeping
// what the policies keep, until the test ends; it returns its metrics.
func runWriter(t *testing.T, conn driver.Conn, database, topic, dlq string) *prometheus.Registry {
	cfg := writer.Defaults()
	cfg.Topic, cfg.DeadLetterTopic, cfg.Group = topic, dlq, "writer-arrival-"+stacktest.Suffix()
	cfg.BatchAge = 50 * time.Millisecond
	reg := prometheus.NewRegistry()
	w, err := writer.New(cfg, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, writer.NewClickHouseSink(conn, database).KeepLate(90, time.Now),
		slog.New(slog.NewTextHandler(io.Discard, nil)), reg, nil)
	require.NoError(t, err)
	w.KeepBy(retentionpolicy.NewCache(conn, database, 90, time.Second, nil).Bound(time.Minute, 5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return reg
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestEventsOlderThanTheWindowOnArrivalFollowTheirPolicy: a held and a
// 400-day workspace's events 200 days old, arriving after the job dropped
// their week, are stored and served; the job holds their week back while
// they settle, then copies them to the long-term table and drops it; the
// store serves them throughout and verify's online check proves them. A
// 30-day and a default workspace's 100-day-old events are skipped and
// counted, as before; the 30-day workspace's 40-day-old one is stored, as
// before (hidden, and archived before the job deletes it).
func TestEventsOlderThanTheWindowOnArrivalFollowTheirPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, ch := stacktest.ClickHouse(t, 90)
	db := ch.Database
	now := time.Now().UTC()
	for _, p := range []retentionpolicy.Policy{
		{Workspace: "ws_hold", Days: 30, Hold: true, HoldReason: "case 7"},
		{Workspace: "ws_400", Days: 400},
		{Workspace: "ws_30", Days: 30},
	} {
		p.ChangedBy, p.ChangedAt = "operator", now.Add(-time.Hour)
		require.NoError(t, retentionpolicy.Set(ctx, conn, db, p))
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The week 200 days ago was stored and dropped by the job.
	stacktest.InsertEvents(t, conn, db, lateEvent("ws_90", "early", now, 200*24*time.Hour))
	_, err := retention.New(conn, db, 90, nil, quiet).RunOnce(ctx)
	require.NoError(t, err)
	week := weekOf(now.Add(-200 * 24 * time.Hour))
	require.NotContains(t, partitions(t, conn, db), week, "the week 200 days ago was dropped")

	names := stacktest.Topics(t, 2, "events", "dlq")
	reg := runWriter(t, conn, db, names[0], names[1])
	late := []event.Event{
		lateEvent("ws_hold", "hold-200d", now, 200*24*time.Hour),
		lateEvent("ws_400", "400-200d", now, 200*24*time.Hour+time.Hour),
		lateEvent("ws_30", "30-40d", now, 40*24*time.Hour),
		lateEvent("ws_30", "30-100d", now, 100*24*time.Hour),
		lateEvent("ws_30", "30-10d", now, 10*24*time.Hour),
		lateEvent("ws_90", "90-100d", now, 100*24*time.Hour),
	}
	produce(t, names[0], late)
	require.Eventually(t, func() bool { return counter(t, reg, "audittrail_writer_expired_events_total") == 2 }, time.Minute, 20*time.Millisecond)
	require.Eventually(t, func() bool { return count(t, conn, db, migrations.Table) == 4 }, time.Minute, 20*time.Millisecond,
		"stored: the held and the 400-day workspace's, and the 30-day workspace's inside the deployment's window (40 days: archived before its delete, as before)")
	require.Contains(t, partitions(t, conn, db), week, "the held and the 400-day workspace's events are stored in the dropped week")
	require.Eventually(t, func() bool { return count(t, conn, db, migrations.KeptTable) == 2 }, time.Minute, 20*time.Millisecond,
		"and in the long-term table, which no drop of their week can lose")

	// The sealer's part: each stored event gets its leaf and a signed
	// checkpoint, from the row the writer stored.
	key, err := logtest.NewKey(drillOrigin)
	require.NoError(t, err)
	for _, e := range late[:2] {
		lg := logtest.New(drillOrigin, e.WorkspaceID)
		row := storedRow(t, conn, db, e.WorkspaceID, e.ID)
		lg.Append(row.TimestampNs, row.ID, leaf.Hash(&row))
		_, err := lg.Sign(key, now)
		require.NoError(t, err)
		require.NoError(t, lg.Insert(ctx, conn, db))
	}

	cache := retentionpolicy.NewCache(conn, db, 90, time.Minute, nil)
	st := store.New(conn, db, 90, nil).WithPolicies(cache)
	served := func(stage string) {
		for _, e := range late[:2] {
			got, err := st.Get(ctx, e.WorkspaceID, e.ID)
			require.NoError(t, err, "%s: %s is served", stage, e.ID)
			require.Equal(t, e.ID, got.ID)
			n, err := st.Count(ctx, store.Filter{WorkspaceID: e.WorkspaceID})
			require.NoError(t, err)
			require.EqualValues(t, 1, n, "%s: %s once", stage, e.ID)
		}
		for _, e := range late[2:] {
			_, err := st.Get(ctx, e.WorkspaceID, e.ID)
			if e.ID == "30-10d" {
				require.NoError(t, err, "%s: %s is served", stage, e.ID)
			} else {
				require.ErrorIs(t, err, store.ErrNotFound, "%s: %s is past its window (skipped, or stored and hidden)", stage, e.ID)
			}
		}
		vs, err := verify.Verifiers([]string{key.Verifier})
		require.NoError(t, err)
		src := verify.StoreSource{Log: store.NewLog(conn, db), Events: st}
		for _, e := range late[:2] {
			rep, err := verify.Online(ctx, src, verify.OnlineOptions{WorkspaceID: e.WorkspaceID, Known: vs, Origin: drillOrigin,
				UnsealedAfter: now.UnixNano(), ReceivedBy: now.UnixNano()})
			require.NoError(t, err)
			require.Empty(t, rep.Problems, "%s: %s", stage, e.WorkspaceID)
			require.Equal(t, 1, rep.Checked, "%s: %s", stage, e.WorkspaceID)
		}
	}
	served("stored on arrival")

	// A run within the settle time leaves the week (the sealer may not
	// have read the rows back yet).
	_, err = retention.New(conn, db, 90, nil, quiet).SetSettle(retention.DefaultSettle).RunOnce(ctx)
	require.NoError(t, err)
	require.Contains(t, partitions(t, conn, db), week, "a week with rows stored just now waits")
	served("after a run within the settle time")

	// Once settled, the job copies them to the long-term table with their
	// leaves and drops the week.
	_, err = retention.New(conn, db, 90, nil, quiet).RunOnce(ctx)
	require.NoError(t, err)
	require.NotContains(t, partitions(t, conn, db), week)
	require.EqualValues(t, 2, uniqIDs(t, conn, db, migrations.KeptTable))
	require.EqualValues(t, 2, count(t, conn, db, migrations.KeptLeavesTable))
	served("after the week was dropped")
}

func produce(t *testing.T, topic string, events []event.Event) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	for i := range events {
		b, err := event.Marshal(&events[i])
		require.NoError(t, err)
		require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte(events[i].WorkspaceID), Value: b}).FirstErr())
	}
}

func partitions(t *testing.T, conn retention.Conn, db string) []string {
	ids, err := migrations.Partitions(context.Background(), conn, migrations.Options{Database: db}, migrations.Table)
	require.NoError(t, err)
	return ids
}

func count(t *testing.T, conn retention.Conn, db, table string) uint64 {
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM %s.%s", db, table)).Scan(&n))
	return n
}

// storedRow reads back the row the writer stored, as the sealer does.
func storedRow(t *testing.T, conn retention.Conn, db, ws, id string) migrations.Row {
	var r migrations.Row
	cols := migrations.InsertColumns
	q := fmt.Sprintf("SELECT %s FROM %s.%s WHERE workspace_id = ? AND id = ? LIMIT 1", strings.Join(cols, ", "), db, migrations.Table)
	require.NoError(t, conn.QueryRow(context.Background(), q, ws, id).Scan(migrations.Events.Pointers(&r, cols)...))
	r.Timestamp, r.ReceivedAt = r.Timestamp.UTC(), r.ReceivedAt.UTC()
	return r
}

// weekOf is the events table's week partition holding t: the day number
// of its Monday (migrations.WeekPartition).
func weekOf(t time.Time) string {
	day := t.UTC().Truncate(24 * time.Hour)
	return fmt.Sprint(day.AddDate(0, 0, -((int(day.Weekday())+6)%7)).Unix() / 86400)
}

func uniqIDs(t *testing.T, conn retention.Conn, db, table string) uint64 {
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf("SELECT uniqExact(workspace_id, id) FROM %s.%s", db, table)).Scan(&n))
	return n
}
