package writer

// Unit tests of what the writer commits, against kfake (an in-process
// Kafka) and a fake Sink: no server is needed. Offsets follow stored rows
// in batch order, a revoked partition is flushed and committed before it
// moves, a lost one is dropped and not committed, and poison is parked
// with its reason before its offset moves on.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

// fakeSink stores rows in memory. The insert of a batch whose first row
// has the id hold waits until release is closed.
type fakeSink struct {
	hold    string
	release chan struct{}

	mu      sync.Mutex
	stored  map[string]int // times each event id was stored
	inserts int
	offsets []migrations.StoredOffset // recorded, in order
}

func newFakeSink() *fakeSink { return &fakeSink{stored: map[string]int{}} }

func (s *fakeSink) Insert(ctx context.Context, rows []migrations.Row) error {
	if s.hold != "" && len(rows) > 0 && rows[0].ID == s.hold {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inserts++
	for i := range rows {
		s.stored[rows[i].ID]++
	}
	return nil
}

func (s *fakeSink) Register(context.Context, []idwindow.StoredID) error { return nil }

func (s *fakeSink) RecordOffsets(_ context.Context, offsets []migrations.StoredOffset) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offsets = append(s.offsets, offsets...)
	return nil
}

func (s *fakeSink) Recent(context.Context, string, int32, time.Time, int) ([]idwindow.StoredID, error) {
	return nil, nil
}

func (s *fakeSink) Moved(context.Context, string, int, []int32, time.Time, int) ([]idwindow.StoredID, error) {
	return nil, nil
}

func (s *fakeSink) MovedFrom(context.Context, string, int32, []string, time.Time, int) ([]idwindow.StoredID, error) {
	return nil, nil
}

// PartitionCounts knows only the current count: nothing is handed over.
func (s *fakeSink) PartitionCounts(_ context.Context, _ string, n int, now time.Time) ([]idwindow.Count, error) {
	return []idwindow.Count{{Partitions: n, NoticedAt: now}}, nil
}

// storedAll reports whether every one of ids is stored.
func (s *fakeSink) storedAll(ids []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.stored[id] == 0 {
			return false
		}
	}
	return true
}

// counts returns how many inserts were made and how many rows each id
// was stored as, in a copy.
func (s *fakeSink) counts() (int, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.stored))
	for id, n := range s.stored {
		out[id] = n
	}
	return s.inserts, out
}

// kafka is a kfake cluster with an events topic of some partitions and a
// dead-letter topic, and a producer that chooses the partition.
type kafka struct {
	c     *kfake.Cluster
	opts  []kgo.Opt
	prod  *kgo.Client
	topic string
	dlq   string
	group string

	mu      sync.Mutex
	commits map[int32][]int64 // offsets committed per partition, in order
}

func newKafka(t *testing.T, partitions int32) *kafka {
	t.Helper()
	k := &kafka{topic: "audit-events", dlq: "audit-dlq", group: "writer-unit", commits: map[int32][]int64{}}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, k.topic), kfake.SeedTopics(1, k.dlq))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	k.c, k.opts = c, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	k.prod, err = kgo.NewClient(append(k.client(), kgo.DefaultProduceTopic(k.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	t.Cleanup(k.prod.Close)
	// Every commit is recorded (observed only: kfake then handles it).
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, t := range req.(*kmsg.OffsetCommitRequest).Topics {
			for _, p := range t.Partitions {
				k.commits[p.Partition] = append(k.commits[p.Partition], p.Offset)
			}
		}
		return nil, nil, false
	})
	return k
}

// client returns new options for a client of the cluster.
func (k *kafka) client() []kgo.Opt { return append([]kgo.Opt{}, k.opts...) }

// committedOffsets returns the offsets committed to partition p so far.
func (k *kafka) committedOffsets(p int32) []int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]int64(nil), k.commits[p]...)
}

// committed returns the group's committed offset of partition p, -1 when
// there is none.
func (k *kafka) committed(t *testing.T, p int32) int64 {
	offs, err := kadm.NewClient(k.prod).FetchOffsets(context.Background(), k.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return -1
	}
	require.NoError(t, err)
	o, ok := offs.Lookup(k.topic, p)
	if !ok {
		return -1
	}
	return o.At
}

// events produces n valid events to partition p, with ids prefix_0 ... in
// offset order, and returns the ids.
func (k *kafka) events(t *testing.T, p int32, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	recs := make([]*kgo.Record, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s_%d", prefix, i)
		recs[i] = eventRecord(t, "ws_"+prefix, ids[i])
		recs[i].Partition = p
	}
	k.send(t, recs...)
	return ids
}

func (k *kafka) send(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, k.prod.ProduceSync(ctx, recs...).FirstErr())
}

// eventRecord is an accepted event as the ingest path publishes it.
func eventRecord(t *testing.T, ws, id string) *kgo.Record {
	now := time.Now().UTC()
	e := event.Event{ID: id, WorkspaceID: ws, Event: "Source Modified", Timestamp: now, ReceivedAt: now,
		Actor:   event.Actor{Type: "user", ID: "usr_1"},
		Changes: map[string]event.Change{"name": {Old: []byte(`"a"`), New: []byte(`"b"`)}}}
	require.NoError(t, event.Policy{}.Validate(&e))
	b, err := event.Marshal(&e)
	require.NoError(t, err)
	return &kgo.Record{Key: []byte(ws), Value: b}
}

// config is a writer configuration for k whose batches are cut only at
// size rows (or after a minute).
func (k *kafka) config(size int) Config {
	cfg := Defaults()
	cfg.Topic, cfg.DeadLetterTopic, cfg.Group = k.topic, k.dlq, k.group
	cfg.BatchSize, cfg.BatchAge = size, time.Minute
	cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 50*time.Millisecond
	cfg.SessionTimeout, cfg.ShutdownTimeout = 6*time.Second, 5*time.Second
	return cfg
}

// start runs a writer until the returned stop function is called.
func start(t *testing.T, cfg Config, opts []kgo.Opt, sink Sink) (w *Writer, stop func() error) {
	t.Helper()
	w, err := New(cfg, opts, sink, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error { once.Do(func() { cancel(); runErr = <-done }); return runErr }
	t.Cleanup(func() { _ = stop() })
	return w, stop
}

// buffered returns how many records the writer holds in its buffer.
func (w *Writer) buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	var v T
	require.Eventually(t, func() bool {
		select {
		case v = <-ch:
			return true
		default:
			return false
		}
	}, 30*time.Second, 10*time.Millisecond, what)
	return v
}

// autocommits counts the client's autocommit rounds: its debug log says
// "autocommitting" or "skipping autocommit ..." on each.
type autocommits struct{ n atomic.Int64 }

func (a *autocommits) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (a *autocommits) Log(_ kgo.LogLevel, msg string, _ ...any) {
	if msg == "autocommitting" || strings.HasPrefix(msg, "skipping autocommit") {
		a.n.Add(1)
	}
}

// TestCommitsFollowBatchOrder: with two inserts at once and the first
// batch's insert held, the later batches are stored, but no commit passes
// a record whose row is not stored; once the first batch is stored, the
// offset reaches the end.
func TestCommitsFollowBatchOrder(t *testing.T) {
	k := newKafka(t, 1)
	ids := k.events(t, 0, "evt", 15) // three batches of five
	sink := newFakeSink()
	sink.hold, sink.release = ids[0], make(chan struct{})
	var bad atomic.Value
	// Checked at every commit, before kfake stores it (added after
	// newKafka's recorder, so it runs second).
	k.c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		for _, t := range req.(*kmsg.OffsetCommitRequest).Topics {
			for _, p := range t.Partitions {
				if !sink.storedAll(ids[:max(min(int(p.Offset), len(ids)), 0)]) {
					bad.Store(fmt.Sprintf("offset %d committed before the rows before it were stored", p.Offset))
				}
			}
		}
		return nil, nil, false
	})
	ticks := &autocommits{}
	cfg := k.config(5)
	cfg.InsertStreams = 2
	_, stop := start(t, cfg, append(k.client(), kgo.WithLogger(ticks)), sink)

	require.Eventually(t, func() bool { return sink.storedAll(ids[5:]) }, 10*time.Second, 5*time.Millisecond,
		"the second and third batches are stored while the first one is held")
	require.False(t, sink.storedAll(ids[:5]))
	// Two autocommit rounds later, a mark made when the later batches
	// were stored would have been committed.
	from := ticks.n.Load()
	require.Eventually(t, func() bool { return ticks.n.Load() >= from+2 }, 10*time.Second, 10*time.Millisecond)
	require.Nil(t, bad.Load())
	require.Empty(t, k.committedOffsets(0), "nothing is committed while the first batch is not stored")

	close(sink.release)
	require.Eventually(t, func() bool { return k.committed(t, 0) == 15 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())
	require.Nil(t, bad.Load())
	_, stored := sink.counts()
	for _, id := range ids {
		require.Equal(t, 1, stored[id], id)
	}
}

// TestRevokedPartitionIsFlushedAndCommitted: when a second member joins,
// the partition the writer gives up had its buffered rows stored and its
// offset committed before the other member is assigned it.
func TestRevokedPartitionIsFlushedAndCommitted(t *testing.T) {
	k := newKafka(t, 2)
	ids := [][]string{k.events(t, 0, "p0", 20), k.events(t, 1, "p1", 30)}
	sink := newFakeSink()
	w, stop := start(t, k.config(1000), k.client(), sink)
	require.Eventually(t, func() bool { return w.buffered() == 50 }, 10*time.Second, 5*time.Millisecond)
	require.Empty(t, k.committedOffsets(0))
	require.Empty(t, k.committedOffsets(1))

	// What the other member finds when it is assigned a partition.
	type found struct {
		p         int32
		stored    bool
		committed []int64
	}
	got := make(chan found, 2)
	other, err := kgo.NewClient(append(k.client(), kgo.ConsumerGroup(k.group), kgo.ConsumeTopics(k.topic),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(6*time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			for _, p := range assigned[k.topic] {
				got <- found{p: p, stored: sink.storedAll(ids[p]), committed: k.committedOffsets(p)}
			}
		}))...)
	require.NoError(t, err)
	defer other.Close()

	f := receive(t, got, "the other member is assigned a partition")
	require.True(t, f.stored, "partition %d's buffered rows were stored before it moved", f.p)
	require.NotEmpty(t, f.committed, "partition %d's offset was committed before it moved", f.p)
	require.Equal(t, int64(len(ids[f.p])), f.committed[len(f.committed)-1])
	require.Equal(t, int64(len(ids[f.p])), k.committed(t, f.p))
	require.Zero(t, w.buffered(), "the flush took the whole buffer")
	require.NoError(t, stop())
}

// TestLostPartitionIsDroppedNotCommitted: when the writer's group session
// is lost, its buffer is dropped and nothing is committed; the records are
// read again after it rejoins, and stored once.
func TestLostPartitionIsDroppedNotCommitted(t *testing.T) {
	k := newKafka(t, 1)
	ids := k.events(t, 0, "evt", 25)
	sink := newFakeSink()
	cfg := k.config(1000)
	cfg.DedupeWindow = 0 // no idempotency window: rows kept by mistake would be stored twice
	w, stop := start(t, cfg, k.client(), sink)
	require.Eventually(t, func() bool { return w.buffered() == 25 }, 10*time.Second, 5*time.Millisecond)

	// What the writer holds when it rejoins after losing its session:
	// onLost ran before, and nothing was read again yet.
	type rejoin struct {
		buffered, inserts int
		commits           []int64
	}
	rejoined := make(chan rejoin, 1)
	k.c.ControlKey(int16(kmsg.JoinGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		inserts, _ := sink.counts()
		rejoined <- rejoin{buffered: w.buffered(), inserts: inserts, commits: k.committedOffsets(0)}
		k.c.DropControl()
		return nil, nil, false
	})
	k.c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp, nil, true
	})

	r := receive(t, rejoined, "the writer rejoins after losing its session")
	require.Zero(t, r.buffered, "the lost partition's buffer was dropped")
	require.Zero(t, r.inserts, "nothing was stored")
	require.Empty(t, r.commits, "nothing was committed")

	// Read again after the rejoin and stored at shutdown, once each.
	require.Eventually(t, func() bool { return w.buffered() == 25 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	_, stored := sink.counts()
	require.Len(t, stored, len(ids))
	for _, id := range ids {
		require.Equal(t, 1, stored[id], id)
	}
	require.Equal(t, int64(25), k.committed(t, 0))
}

// TestPoisonIsParkedAndItsOffsetMovesOn: an undecodable record goes to
// the dead-letter topic with its reason and source position, the events
// before it are stored, and the partition's offset passes it (it is the
// last record: no later mark covers it).
func TestPoisonIsParkedAndItsOffsetMovesOn(t *testing.T) {
	k := newKafka(t, 1)
	before := k.events(t, 0, "a", 3)
	k.send(t, &kgo.Record{Key: []byte("ws_x"), Value: []byte("{not an event"), Partition: 0})
	sink := newFakeSink()
	cfg := k.config(1000)
	cfg.BatchAge = 20 * time.Millisecond
	_, stop := start(t, cfg, k.client(), sink)

	require.Eventually(t, func() bool { return k.committed(t, 0) == 4 }, 10*time.Second, 10*time.Millisecond,
		"the offset moves past the poison record")
	require.True(t, sink.storedAll(before))
	require.NoError(t, stop())

	dl, err := kgo.NewClient(append(k.client(), kgo.ConsumeTopics(k.dlq),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	require.NoError(t, err)
	defer dl.Close()
	var parked []*kgo.Record
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		parked = append(parked, dl.PollFetches(ctx).Records()...)
		return len(parked) > 0
	}, 10*time.Second, time.Millisecond)
	require.Len(t, parked, 1)
	require.Equal(t, "{not an event", string(parked[0].Value))
	headers := map[string]string{}
	for _, h := range parked[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	require.True(t, strings.HasPrefix(headers[topics.HeaderDLQReason], reasonUndecodable+": "), headers[topics.HeaderDLQReason])
	require.Equal(t, k.topic, headers[topics.HeaderDLQTopic])
	require.Equal(t, "0", headers[topics.HeaderDLQPartition])
	require.Equal(t, "3", headers[topics.HeaderDLQOffset])
}

// TestLastOfEachPartitionMarksEveryRecord: the records marked for a batch
// are the last of each partition, wherever its runs of records lie.
func TestLastOfEachPartitionMarksEveryRecord(t *testing.T) {
	rec := func(topic string, p int32, off int64) *kgo.Record {
		return &kgo.Record{Topic: topic, Partition: p, Offset: off}
	}
	recs := []*kgo.Record{rec("t", 0, 5), rec("t", 0, 6), rec("t", 1, 3), rec("u", 1, 9), rec("t", 0, 7), rec("t", 2, 1), rec("t", 1, 4)}
	var got []string
	for _, r := range lastOfEachPartition(recs) {
		got = append(got, fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset))
	}
	require.Equal(t, []string{"t/0@7", "t/1@4", "u/1@9", "t/2@1"}, got)
	require.Empty(t, lastOfEachPartition(nil))
}

// TestFreshGroupsTheRegistryIDsByPartition: fresh keeps the new rows in
// batch order and gives their ids grouped by partition (the registry's
// order), in batch order within each; ids already stored are dropped from
// both, and a recycled, longer ids buffer leaves nothing stale behind.
func TestFreshGroupsTheRegistryIDsByPartition(t *testing.T) {
	cfg := Defaults()
	cfg.Topic = "events"
	w := &Writer{cfg: cfg, m: newMetrics(nil), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now,
		ids: idwindow.New(time.Hour, 100)}
	batchOf := func(ids []string, parts []int32, buf []idwindow.StoredID) *batch {
		b := &batch{parts: parts, ids: buf}
		for i, id := range ids {
			b.offs = append(b.offs, int64(100+i))
			b.rows = append(b.rows, migrations.Row{WorkspaceID: "ws", ID: id, TimestampNs: int64(i + 1), ReceivedAtNs: int64(1000 + i)})
			b.keys = append(b.keys, idwindow.KeyOf("ws", id))
		}
		b.filled = len(b.rows)
		return b
	}
	ids := func(s []idwindow.StoredID) (out []string) {
		for _, id := range s {
			out = append(out, fmt.Sprintf("%s@%d", id.ID, id.Partition))
		}
		return out
	}
	rowIDs := func(rows []migrations.Row) (out []string) {
		for _, r := range rows {
			out = append(out, r.ID)
		}
		return out
	}
	rows, stored := w.fresh(batchOf([]string{"a", "b", "c", "d", "e"}, []int32{2, 0, 2, 5, 0}, nil))
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, rowIDs(rows))
	require.Equal(t, []string{"b@0", "e@0", "a@2", "c@2", "d@5"}, ids(stored))

	// "c" and "e" are stored already; the buffer of the previous batch is reused.
	b := batchOf([]string{"f", "c", "g", "e", "h"}, []int32{1, 2, 0, 0, 1}, stored[:0])
	b.rows[1].TimestampNs, b.rows[3].TimestampNs = 3, 5 // replays of the same versions
	rows, stored = w.fresh(b)
	require.Equal(t, []string{"f", "g", "h"}, rowIDs(rows))
	require.Equal(t, []string{"g@0", "f@1", "h@1"}, ids(stored))
	require.Len(t, stored, 3)
	// The offsets record: every row's record, in batch order, the
	// duplicates as such, each with the row's key and received_at_ns.
	want := []migrations.StoredOffset{
		{Topic: "events", Partition: 1, Offset: 100, Outcome: migrations.OutcomeStored, WorkspaceID: "ws", ID: "f", TimestampNs: 1, ReceivedAtNs: 1000},
		{Topic: "events", Partition: 2, Offset: 101, Outcome: migrations.OutcomeDuplicate, WorkspaceID: "ws", ID: "c", TimestampNs: 3, ReceivedAtNs: 1001},
		{Topic: "events", Partition: 0, Offset: 102, Outcome: migrations.OutcomeStored, WorkspaceID: "ws", ID: "g", TimestampNs: 3, ReceivedAtNs: 1002},
		{Topic: "events", Partition: 0, Offset: 103, Outcome: migrations.OutcomeDuplicate, WorkspaceID: "ws", ID: "e", TimestampNs: 5, ReceivedAtNs: 1003},
		{Topic: "events", Partition: 1, Offset: 104, Outcome: migrations.OutcomeStored, WorkspaceID: "ws", ID: "h", TimestampNs: 5, ReceivedAtNs: 1004},
	}
	require.Equal(t, want, b.offsets)
}
