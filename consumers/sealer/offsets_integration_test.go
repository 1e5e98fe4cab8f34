package sealer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	readstore "github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/query-api/verify/tampertest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// countingStore counts the keys the sealer reads back from the events
// table (the fallback) and the offsets it looks up.
type countingStore struct {
	*sealer.ClickHouseStore
	readBack, looked atomic.Int64
}

func (c *countingStore) Rows(ctx context.Context, keys []sealer.Key) (map[sealer.Key]migrations.Row, error) {
	c.readBack.Add(int64(len(keys)))
	return c.ClickHouseStore.Rows(ctx, keys)
}

func (c *countingStore) Offsets(ctx context.Context, spans []sealer.Span) (map[sealer.At]migrations.StoredOffset, error) {
	for _, sp := range spans {
		c.looked.Add(sp.To - sp.From + 1)
	}
	return c.ClickHouseStore.Offsets(ctx, spans)
}

// writerWith runs a writer whose configuration tweak changed.
func (s *stack) writerWith(tweak func(*writer.Config)) (stop func()) {
	cfg := writer.Defaults()
	cfg.Topic, cfg.DeadLetterTopic, cfg.Group = s.events, s.dlq, s.writerGroup
	cfg.BatchSize, cfg.BatchAge = 200, 50*time.Millisecond
	tweak(&cfg)
	w, err := writer.New(cfg, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, writer.NewClickHouseSink(s.conn, s.db), quietLog(), nil, nil)
	require.NoError(s.t, err)
	return run(s.t, w.Run)
}

// TestTheSealerReadsWhatTheWriterStoredByOffset: with the writer
// recording its offsets, the sealer seals every stored event once from
// the offsets record and the records, and reads nothing back from the
// events table, whatever the traffic holds (dead letters, expired events,
// identical resends, a resend with another timestamp, a backdated event).
func TestTheSealerReadsWhatTheWriterStoredByOffset(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	defer s.writer()()
	store := &countingStore{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
	defer s.sealer(store)()
	workspaces := []string{"ws_a", "ws_b"}
	s.traffic(workspaces, 100, "one")
	visible := s.sealed(workspaces, 60*time.Second)
	for _, ws := range workspaces {
		s.checkLog(ws, visible)
	}
	require.Zero(t, store.readBack.Load(), "no record needed the read-back")
	require.Positive(t, store.looked.Load())
}

// TestRecordsWithoutOffsetsAreReadBack: events stored by a writer that
// does not record its offsets (before migration 9, or a rolling deploy's
// older version) are sealed from the rows read back, and then the same
// log goes on from the offsets record.
func TestRecordsWithoutOffsetsAreReadBack(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	stopWriter := s.writerWith(func(c *writer.Config) { c.RecordOffsets = false })
	workspaces := []string{"ws_a"}
	s.traffic(workspaces, 50, "old")
	require.Eventually(t, func() bool { return stacktest.VisibleIDs(t, s.conn, s.db)["ws_a/old-ws_a-49"] == 1 }, 30*time.Second, 50*time.Millisecond)
	stopWriter()
	store := &countingStore{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
	defer s.sealer(store)()
	defer s.writer()()
	s.traffic(workspaces, 50, "new")
	visible := s.sealed(workspaces, 60*time.Second, "ws_a/new-ws_a-49")
	s.checkLog("ws_a", visible)
	back := store.readBack.Load()
	require.Positive(t, back, "the older writer's records were read back")
	require.Less(t, back, int64(70), "the newer writer's were not (the old traffic holds 66 decodable records)")
}

// TestARowAlteredBeforeItIsSealedIsSealedAsItsRecord: a row changed in
// ClickHouse after the writer stored it and before the sealer read it is
// sealed as its record says, and verify online reports it altered.
func TestARowAlteredBeforeItIsSealedIsSealedAsItsRecord(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	stopWriter := s.writer()
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, record(t, s.events, "ws_t", fmt.Sprintf("evt_%d", i), time.Now().UTC().Add(-time.Minute)))
	}
	s.send(recs...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, s.conn, s.db)) == 5 }, 30*time.Second, 50*time.Millisecond)
	stopWriter()
	ctx := context.Background()
	require.NoError(t, tampertest.Tamperer{Conn: s.conn, Database: s.db}.SetActor(ctx, "ws_t", "evt_2", "usr_evil"))

	defer s.sealer(nil)()
	require.Eventually(t, func() bool { size, _ := s.latest("ws_t"); return size == 5 }, 30*time.Second, 100*time.Millisecond,
		"every stored event sealed, the altered one as its record says")
	vs, err := verify.Verifiers([]string{s.vkey})
	require.NoError(t, err)
	src := verify.StoreSource{Log: readstore.NewLog(s.conn, s.db), Events: readstore.New(s.conn, s.db, 90, time.Now)}
	rep, err := verify.Online(ctx, src, verify.OnlineOptions{WorkspaceID: "ws_t", Known: vs, Origin: "audittrail.local",
		UnsealedAfter: time.Now().Add(-10 * time.Minute).UnixNano(), ReceivedBy: time.Now().Add(time.Minute).UnixNano()})
	require.NoError(t, err)
	problems := strings.Join(rep.Problems, "\n")
	require.Contains(t, problems, "row evt_2 (leaf 2): altered")
	require.Contains(t, problems, "does not match checkpoint 5", "the tree of the stored rows is not the signed one")
	require.Len(t, rep.Problems, 2, "the altered row and the root it changes, nothing else: %s", problems)
}

// offsetsFixture records an offsets record with the cases the sealer's
// lookup must decide, and returns the spans to read.
func offsetsFixture(t *testing.T, conn interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}, db string) []sealer.Span {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	stored := func(p int32, off int64, at time.Time, id string) migrations.StoredOffset {
		return migrations.StoredOffset{Topic: "events", Partition: p, Offset: off, StoredAt: at, Outcome: migrations.OutcomeStored,
			WorkspaceID: "ws", ID: id, TimestampNs: 1, ReceivedAtNs: at.UnixNano()}
	}
	notStored := func(p int32, off int64, at time.Time, o uint8) migrations.StoredOffset {
		return migrations.StoredOffset{Topic: "events", Partition: p, Offset: off, StoredAt: at, Outcome: o}
	}
	twice := stored(0, 12, t0, "c")
	twice.StoredAt = t0.Add(time.Minute)
	dup := stored(0, 11, t0.Add(time.Minute), "b")
	dup.Outcome = migrations.OutcomeDuplicate
	rows := []migrations.StoredOffset{
		stored(0, 10, t0, "a"),
		// Stored, then replayed after a writer crash before its commit:
		// the replay found the id in its window.
		stored(0, 11, t0, "b"), dup,
		// Stored twice (the replay's window had forgotten the id): the
		// same row but for when.
		stored(0, 12, t0, "c"), twice,
		// Expired on the first pass, stored on the replay.
		notStored(0, 13, t0, migrations.OutcomeExpired), stored(0, 13, t0.Add(time.Minute), "d"),
		notStored(0, 14, t0, migrations.OutcomeDeadLettered),
		// Not stored twice: expired, then dead-lettered by a replay with
		// another catalogue: the last recorded.
		notStored(0, 15, t0, migrations.OutcomeExpired), notStored(0, 15, t0.Add(time.Minute), migrations.OutcomeDeadLettered),
		stored(0, 99, t0, "outside"), // not in the spans
		stored(1, 10, t0, "p1"),
		stored(2, 12, t0, "other partition"), // not in the spans
	}
	rows[0].Topic = "events"
	other := stored(0, 12, t0, "other topic")
	other.Topic = "other"
	rows = append(rows, other)
	b, err := conn.PrepareBatch(context.Background(), migrations.Offsets.Insert(db))
	require.NoError(t, err)
	for i := range rows {
		require.NoError(t, b.Append(migrations.Offsets.Values(&rows[i])...))
	}
	require.NoError(t, b.Send())
	return []sealer.Span{{Topic: "events", Part: 0, From: 10, To: 16}, {Topic: "events", Part: 1, From: 10, To: 10}}
}

// checkOffsets asserts what Offsets decided for offsetsFixture.
func checkOffsets(t *testing.T, got map[sealer.At]migrations.StoredOffset) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(p int32, off int64) sealer.At { return sealer.At{Topic: "events", Partition: p, Offset: off} }
	require.Len(t, got, 7, "offsets 10-15 of partition 0 and 10 of partition 1; 16 has no row")
	require.Equal(t, "a", got[at(0, 10)].ID)
	require.Equal(t, migrations.OutcomeStored, got[at(0, 11)].Outcome, "a replay's duplicate does not hide the stored copy")
	require.Equal(t, "c", got[at(0, 12)].ID)
	require.Equal(t, t0.UnixNano(), got[at(0, 12)].ReceivedAtNs)
	require.Equal(t, migrations.OutcomeDeadLettered, got[at(0, 15)].Outcome, "of copies not stored, the last recorded")
	require.Equal(t, migrations.OutcomeStored, got[at(0, 13)].Outcome)
	require.Equal(t, "d", got[at(0, 13)].ID)
	require.Equal(t, migrations.OutcomeDeadLettered, got[at(0, 14)].Outcome)
	require.Equal(t, "p1", got[at(1, 10)].ID)
}

// TestOffsetsLookupOnTheRealServer: the lookup's choices among an
// offset's rows on 18.16, and that it reads its index ranges only: a
// lookup of 100 offsets in each of two partitions, in a record of 200,000,
// reads at most two granules (1,024 rows each) per range.
func TestOffsetsLookupOnTheRealServer(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	spans := offsetsFixture(t, conn, ch.Database)
	store := sealer.NewClickHouseStore(conn, ch.Database)
	got, err := store.Offsets(ctx, spans)
	require.NoError(t, err)
	checkOffsets(t, got)

	// A large record: 100,000 offsets on each of partitions 3 and 4.
	b, err := conn.PrepareBatch(ctx, migrations.Offsets.Insert(ch.Database))
	require.NoError(t, err)
	now := time.Now().UTC().Truncate(time.Second)
	for p := int32(3); p <= 4; p++ {
		for off := range int64(100_000) {
			o := migrations.StoredOffset{Topic: "events", Partition: p, Offset: off, StoredAt: now, WorkspaceID: "ws", ID: fmt.Sprint(off)}
			require.NoError(t, b.Append(migrations.Offsets.Values(&o)...))
		}
	}
	require.NoError(t, b.Send())
	require.NoError(t, conn.Exec(ctx, "OPTIMIZE TABLE "+ch.Database+"."+migrations.OffsetsTable+" FINAL"))
	qid := "offsets-" + stacktest.Suffix()
	lctx := clickhouse.Context(ctx, clickhouse.WithQueryID(qid), clickhouse.WithSettings(clickhouse.Settings{"log_queries": 1}))
	got, err = store.Offsets(lctx, []sealer.Span{{Topic: "events", Part: 3, From: 50_000, To: 50_099}, {Topic: "events", Part: 4, From: 70_000, To: 70_099}})
	require.NoError(t, err)
	require.Len(t, got, 200)
	// The server logs the query's end once the client closed it.
	var read uint64
	require.Eventually(t, func() bool {
		require.NoError(t, conn.Exec(ctx, "SYSTEM FLUSH LOGS"))
		require.NoError(t, conn.QueryRow(ctx, "SELECT max(read_rows) FROM system.query_log WHERE query_id = ? AND type = 2", qid).Scan(&read))
		return read > 0
	}, 20*time.Second, 100*time.Millisecond)
	t.Logf("a lookup of 200 offsets read %d rows of 200,000", read)
	require.Positive(t, read)
	require.LessOrEqual(t, read, uint64(4*1024), "two index ranges, each within two granules")
}

// TestOffsetsLookupOnCurrentClickHouse: the same choices on current
// ClickHouse (chdb, in process).
func TestOffsetsLookupOnCurrentClickHouse(t *testing.T) {
	t.Parallel()
	srv := chdbtest.Start(t)
	ctx := context.Background()
	const db = "audittrail"
	_, err := migrations.Apply(ctx, srv, migrations.Options{Database: db, RetentionDays: 30})
	require.NoError(t, err)
	spans := offsetsFixture(t, srv, db)
	got, err := sealer.NewClickHouseStore(srv, db).WithLiteralKeys().Offsets(ctx, spans)
	require.NoError(t, err)
	checkOffsets(t, got)
}

// stuckSink is a writer's sink that never lets a batch be committed: its
// Register fails (registered false) or registers the ids and then waits
// until the writer stops (registered true), as a writer that crashed
// before, or after, registering a batch's ids.
type stuckSink struct {
	*writer.ClickHouseSink
	registered bool
	reached    chan struct{}
	once       sync.Once
}

func (s *stuckSink) Register(ctx context.Context, ids []idwindow.StoredID) error {
	s.once.Do(func() { close(s.reached) })
	if !s.registered {
		return errors.New("id registry unavailable (simulated)")
	}
	if err := s.ClickHouseSink.Register(ctx, ids); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestAWriterReplayIsSealedOnceWithoutReadingBack: a writer stops after
// storing a batch and recording its offsets, before (or after)
// registering its ids, and never commits; the next writer stores the
// batch again (or finds its ids registered: duplicates of themselves).
// The offsets record then holds two rows for each offset; the sealer
// gives each event one leaf, the hash of its stored row, and reads
// nothing back.
func TestAWriterReplayIsSealedOnceWithoutReadingBack(t *testing.T) {
	t.Parallel()
	for _, registered := range []bool{false, true} {
		t.Run(fmt.Sprintf("registered=%v", registered), func(t *testing.T) {
			t.Parallel() // each on a stack of its own
			s := newStack(t)
			cfg := writer.Defaults()
			cfg.Topic, cfg.DeadLetterTopic, cfg.Group = s.events, s.dlq, s.writerGroup
			cfg.BatchSize, cfg.BatchAge = 1000, 50*time.Millisecond
			cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
			stuck := &stuckSink{ClickHouseSink: writer.NewClickHouseSink(s.conn, s.db), registered: registered, reached: make(chan struct{})}
			w, err := writer.New(cfg, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, stuck, quietLog(), nil, nil)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			s.traffic([]string{"ws_a"}, 30, "one")
			select {
			case <-stuck.reached:
			case <-time.After(30 * time.Second):
				t.Fatal("the first writer never stored a batch")
			}
			cancel()
			<-done // its error (the failed register) is the crash

			var n uint64
			require.NoError(t, s.conn.QueryRow(context.Background(), "SELECT count() FROM "+s.db+"."+migrations.OffsetsTable).Scan(&n))
			require.Positive(t, n, "the first writer recorded its offsets")
			defer s.writer()()
			store := &countingStore{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
			defer s.sealer(store)()
			visible := s.sealed([]string{"ws_a"}, 60*time.Second)
			s.checkLog("ws_a", visible)
			var twice uint64
			require.NoError(t, s.conn.QueryRow(context.Background(), "SELECT count() FROM (SELECT kafka_offset FROM "+s.db+"."+migrations.OffsetsTable+
				" GROUP BY kafka_offset, partition HAVING count() > 1)").Scan(&twice))
			require.Positive(t, twice, "offsets recorded by both writers")
			require.Zero(t, store.readBack.Load(), "nothing read back")
		})
	}
}
