package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// conn is what the log reader and the test's inserts need.
type conn interface {
	store.Conn
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
	Exec(ctx context.Context, query string, args ...any) error
}

func TestLogReadsOn1816(t *testing.T) {
	c, chc := stacktest.ClickHouse(t, 90)
	checkLogReads(t, c, chc.Database, false)
}

func TestLogReadsOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	_, err := migrations.Apply(context.Background(), srv, migrations.Options{Database: "audittrail", RetentionDays: 90})
	require.NoError(t, err)
	srv.StopMerges(t, "audittrail", migrations.LeavesTable)
	srv.StopMerges(t, "audittrail", migrations.HashesTable)
	srv.StopMerges(t, "audittrail", migrations.CheckpointsTable)
	checkLogReads(t, srv, "audittrail", true)
}

// checkLogReads stores a log of 300 leaves twice (unmerged copies), with
// checkpoints at 100 and 300, and reads it back as the API and verify do.
func checkLogReads(t *testing.T, c conn, db string, textOnly bool) {
	ctx := context.Background()
	now := time.Now()
	key, err := logtest.NewKey(origin)
	require.NoError(t, err)
	lg := logtest.New(origin, "ws_t")
	tamper := struct{ rows []migrations.Row }{}
	for i := range 300 {
		r := drillRow(i, now)
		tamper.rows = append(tamper.rows, r)
		lg.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
		if i == 99 {
			_, err := lg.Sign(key, now)
			require.NoError(t, err)
		}
	}
	cp, err := lg.Sign(key, now)
	require.NoError(t, err)
	insert := lg.Insert
	if textOnly {
		insert = func(ctx context.Context, _ logtest.Batcher, db string) error { return lg.InsertHex(ctx, c, db) }
	}
	require.NoError(t, insert(ctx, c, db))
	require.NoError(t, insert(ctx, c, db))
	insertRows(t, c, db, tamper.rows)

	l := store.NewLog(c, db)
	latest, err := l.LatestCheckpoint(ctx, "ws_t")
	require.NoError(t, err)
	require.Equal(t, cp.Size, latest.Size)
	require.Equal(t, cp.Root, latest.Root)
	require.Equal(t, cp.Note, latest.Note)
	at100, err := l.CheckpointAt(ctx, "ws_t", 100)
	require.NoError(t, err)
	_, err = l.CheckpointAt(ctx, "ws_t", 101)
	require.ErrorIs(t, err, store.ErrNoCheckpoint)
	_, err = l.LatestCheckpoint(ctx, "ws_other")
	require.ErrorIs(t, err, store.ErrNoCheckpoint)

	lf, err := l.LeafByID(ctx, "ws_t", "evt_042")
	require.NoError(t, err)
	require.EqualValues(t, 42, lf.Index)
	require.Equal(t, leaf.Hash(&tamper.rows[42]), lf.Hash)
	byKey, err := l.LeafByKey(ctx, "ws_t", store.Key{TimestampNs: tamper.rows[42].TimestampNs, ID: "evt_042"})
	require.NoError(t, err)
	require.Equal(t, lf, byKey)
	_, err = l.LeafByKey(ctx, "ws_t", store.Key{TimestampNs: tamper.rows[42].TimestampNs + 1, ID: "evt_042"})
	require.ErrorIs(t, err, store.ErrNoLeaf)
	_, err = l.LeafByID(ctx, "ws_t", "nope")
	require.ErrorIs(t, err, store.ErrNoLeaf)
	hr := l.HashReader(ctx, "ws_t")
	for _, size := range []int64{100, 300} {
		p, err := tlog.ProveRecord(size, 42, hr)
		require.NoError(t, err)
		root := map[int64]tlog.Hash{100: at100.Root, 300: cp.Root}[size]
		require.NoError(t, tlog.CheckRecord(p, size, root, 42, lf.Hash))
	}
	tp, err := tlog.ProveTree(300, 100, hr)
	require.NoError(t, err)
	require.NoError(t, tlog.CheckTree(tp, 300, cp.Root, 100, at100.Root))
	_, err = hr.ReadHashes([]int64{1 << 40})
	require.ErrorIs(t, err, store.ErrHashMissing)

	n := 0
	require.NoError(t, l.Leaves(ctx, "ws_t", 10, 20, func(lf store.Leaf) error {
		require.EqualValues(t, 10+n, lf.Index)
		n++
		return nil
	}))
	require.Equal(t, 10, n)
	keys := []store.Key{{TimestampNs: tamper.rows[7].TimestampNs, ID: "evt_007"}, {TimestampNs: tamper.rows[250].TimestampNs, ID: "evt_250"}, {TimestampNs: 1, ID: "evt_001"}}
	idx, err := l.LeafIndexes(ctx, "ws_t", keys, 200)
	require.NoError(t, err)
	require.Equal(t, map[store.Key]int64{keys[0]: 7}, idx)

	events := store.New(c, db, 90, time.Now)
	got := 0
	require.NoError(t, events.RowsByKeys(ctx, "ws_t", keys, func(r *migrations.Row) error {
		got++
		require.Equal(t, leaf.Hash(r), leaf.Hash(map[string]*migrations.Row{"evt_007": &tamper.rows[7], "evt_250": &tamper.rows[250]}[r.ID]))
		return nil
	}))
	require.Equal(t, 2, got)
	count, err := events.Count(ctx, store.Filter{WorkspaceID: "ws_t", ActorID: "usr_1"})
	require.NoError(t, err)
	require.EqualValues(t, 300, count)

	vs, err := verify.Verifiers([]string{key.Verifier})
	require.NoError(t, err)
	rep, err := verify.Online(ctx, verify.StoreSource{Log: l, Events: events}, verify.OnlineOptions{WorkspaceID: "ws_t", Known: vs, Origin: origin,
		ReceivedBy: now.Add(time.Minute).UnixNano()})
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Equal(t, 300, rep.Checked)
}

func insertRows(t *testing.T, c conn, db string, rows []migrations.Row) {
	t.Helper()
	b, err := c.PrepareBatch(context.Background(), migrations.Events.Insert(db))
	require.NoError(t, err)
	for i := range rows {
		require.NoError(t, b.Append(rows[i].Values()...), fmt.Sprint(i))
	}
	require.NoError(t, b.Send())
}
