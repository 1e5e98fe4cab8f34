// Package writer_test tests the writer from outside against the real Kafka
// broker and ClickHouse server (integration tests, run when
// AUDITTRAIL_INTEGRATION=1): every event stored once, poison parked, failed
// inserts retried, partitions shared and taken over, outages survived. It
// also benchmarks the ClickHouse sink and the whole writer.
package writer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

func quietLog() *slog.Logger {
	if os.Getenv("AUDITTRAIL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// validRecord is an accepted event as the ingest path publishes it.
func validRecord(t testing.TB, topic, ws, id string, ts time.Time) *kgo.Record {
	e := event.Event{ID: id, WorkspaceID: ws, Event: "Source Modified", Timestamp: ts, ReceivedAt: time.Now().UTC(),
		Actor:   event.Actor{Type: "user", ID: "usr_1"},
		Changes: map[string]event.Change{"name": {Old: []byte(`"a"`), New: []byte(`"b"`)}}}
	require.NoError(t, event.Policy{}.Validate(&e))
	b, err := event.Marshal(&e)
	require.NoError(t, err)
	return &kgo.Record{Topic: topic, Key: []byte(ws), Value: b}
}

func kafkaOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}
	if os.Getenv("AUDITTRAIL_TEST_LOG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelDebug, nil)))
	}
	return opts
}

// futureRecord is an event whose timestamp a producer set too far ahead
// (it bypassed the gateway's check, e.g. a direct Kafka producer).
func futureRecord(t testing.TB, topic, ws, id string, ts time.Time) *kgo.Record {
	e := event.Event{ID: id, WorkspaceID: ws, Event: "Source Modified", Category: "Sources", Timestamp: ts,
		ReceivedAt: time.Now().UTC(), Actor: event.Actor{Type: "user", ID: "usr_1"}}
	b, err := event.Marshal(&e)
	require.NoError(t, err)
	return &kgo.Record{Topic: topic, Key: []byte(ws), Value: b}
}

type harness struct {
	t       *testing.T
	reg     *prometheus.Registry
	topic   string
	dlq     string
	cfg     writer.Config
	opts    []kgo.Opt
	sink    writer.Sink
	produce *kgo.Client
}

func newHarness(t *testing.T, sink func(db string) writer.Sink, db string) *harness {
	names := stacktest.Topics(t, 4, "events", "dlq")
	cfg := writer.Defaults()
	cfg.Topic, cfg.DeadLetterTopic = names[0], names[1]
	cfg.Group = "writer-test-" + stacktest.Suffix()
	cfg.BatchSize = 300
	cfg.BatchAge = 50 * time.Millisecond
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.DefaultProduceTopic(names[0]))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return &harness{t: t, topic: names[0], dlq: names[1], cfg: cfg, sink: sink(db),
		opts: kafkaOpts(), produce: cl}
}

// start runs a writer until the returned stop function is called.
func (h *harness) start() (stop func() error) {
	h.reg = prometheus.NewRegistry()
	w, err := writer.New(h.cfg, h.opts, h.sink, quietLog(), h.reg, nil)
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = w.Run(ctx) })
	return func() error { cancel(); wg.Wait(); return runErr }
}

func (h *harness) send(recs ...*kgo.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(h.t, h.produce.ProduceSync(ctx, recs...).FirstErr())
}

func (h *harness) deadLetters(n int) []*kgo.Record {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.ConsumeTopics(h.dlq),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(h.t, err)
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	// Anything beyond n would show up within a short extra poll.
	short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	cl.PollFetches(short).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	return out
}

// metric sums the samples of a metric family in the last started writer.
func (h *harness) metric(name string) float64 {
	mfs, err := h.reg.Gather()
	require.NoError(h.t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestWriterStoresEveryEventOnceAndParksPoison(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	h := newHarness(t, func(db string) writer.Sink { return writer.NewClickHouseSink(conn, db) }, ch.Database)
	now := time.Now().UTC()

	want := map[string]bool{}
	var recs []*kgo.Record
	for i := range 2000 {
		ws := fmt.Sprintf("ws_%d", i%7)
		id := fmt.Sprintf("evt_%05d", i)
		want[ws+"/"+id] = true
		recs = append(recs, validRecord(t, h.topic, ws, id, now.Add(-time.Duration(i)*time.Second)))
	}
	// Producer retries and replays: the same events again, as new records
	// (a record value may be produced only once at a time).
	for _, r := range recs[100:400] {
		recs = append(recs, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value})
	}
	// The same ids sent again with another timestamp: the first stays.
	for i := 500; i < 550; i++ {
		recs = append(recs, validRecord(t, h.topic, fmt.Sprintf("ws_%d", i%7), fmt.Sprintf("evt_%05d", i), now.Add(time.Minute)))
	}
	poison := []*kgo.Record{
		{Topic: h.topic, Key: []byte("ws_0"), Value: []byte("not json")},
		{Topic: h.topic, Key: []byte("ws_0"), Value: []byte(`{"workspace_id": "ws_0", "event": "Nope"}`)},
		{Topic: h.topic, Key: []byte("ws_other"), Value: validRecord(t, h.topic, "ws_0", "evt_wrong_key", now).Value},
		// Beyond the 24 h clock-skew allowance: parked, not stored.
		futureRecord(t, h.topic, "ws_0", "evt_future", now.Add(49*time.Hour)),
	}
	expired := validRecord(t, h.topic, "ws_0", "evt_expired", now.Add(-91*24*time.Hour))
	recs = append(recs, poison...)
	recs = append(recs, expired)

	stop := h.start()
	h.send(recs...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) >= len(want) },
		60*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_dead_letters_total") == float64(len(poison)) },
		30*time.Second, 50*time.Millisecond)
	require.Equal(t, 1.0, h.metric("audittrail_writer_expired_events_total"))
	require.Eventually(t, func() bool {
		return h.metric("audittrail_writer_rows_inserted_total") == float64(len(want))
	}, 30*time.Second, 50*time.Millisecond, "each id is written once")
	require.Equal(t, 350.0, h.metric("audittrail_writer_duplicate_ids_total"), "300 replays and 50 conflicts left out")
	require.Positive(t, h.metric("audittrail_writer_batch_rows"))
	require.Positive(t, h.metric("audittrail_writer_insert_seconds"))
	require.Zero(t, h.metric("audittrail_writer_consumer_lag"), "caught up")
	require.NoError(t, stop())

	got := stacktest.VisibleIDs(t, conn, ch.Database)
	for id, n := range got {
		require.True(t, want[id], "unexpected stored id %s", id)
		require.Equal(t, 1, n, "visible duplicate of %s", id)
	}
	require.Len(t, got, len(want), "every accepted event stored")
	var moved uint64
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf(
		"SELECT count() FROM %s.%s WHERE timestamp_ns >= %d", ch.Database, migrations.Table, now.Add(time.Minute).UnixNano())).Scan(&moved))
	require.Zero(t, moved, "an id sent again with a later timestamp keeps its first timestamp")

	dl := h.deadLetters(len(poison))
	require.Len(t, dl, len(poison), "the dead-letter topic holds exactly the poison")
	reasons := map[string]bool{}
	for _, r := range dl {
		require.Equal(t, h.topic, header(r, topics.HeaderDLQTopic))
		_, err := strconv.Atoi(header(r, topics.HeaderDLQPartition))
		require.NoError(t, err)
		_, err = strconv.ParseInt(header(r, topics.HeaderDLQOffset), 10, 64)
		require.NoError(t, err)
		reasons[header(r, topics.HeaderDLQReason)[:9]] = true
	}
	require.True(t, reasons["undecodab"] && reasons["invalid: "], "reasons: %v", reasons)
	for _, r := range dl {
		if string(r.Value) == string(poison[3].Value) {
			require.Contains(t, header(r, topics.HeaderDLQReason), "timestamp: must not be more than 24h0m0s in the future")
		}
	}

	// A second writer in the same group starts after the committed offsets:
	// it stores nothing new and the set is unchanged.
	stop = h.start()
	h.send(validRecord(t, h.topic, "ws_0", "evt_after_restart", now))
	want["ws_0/evt_after_restart"] = true
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == len(want) },
		60*time.Second, 100*time.Millisecond)
	require.NoError(t, stop())
}

// flakySink fails the first fails inserts and the first registerFails id
// registry writes, as a ClickHouse outage would.
type flakySink struct {
	writer.Sink
	mu                   sync.Mutex
	fails, registerFails int
	calls, registerCalls int
}

// failNext counts a call and reports whether it is one of the first fails.
func (s *flakySink) failNext(calls *int, fails int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	*calls++
	return *calls <= fails
}

func (s *flakySink) Insert(ctx context.Context, rows []migrations.Row) error {
	if s.failNext(&s.calls, s.fails) {
		return fmt.Errorf("clickhouse unavailable (simulated)")
	}
	return s.Sink.Insert(ctx, rows)
}

func (s *flakySink) Register(ctx context.Context, ids []idwindow.StoredID) error {
	if s.failNext(&s.registerCalls, s.registerFails) {
		return fmt.Errorf("id registry unavailable (simulated)")
	}
	return s.Sink.Register(ctx, ids)
}

// flakyHarness is a harness whose writer stores through flaky, in front
// of the real ClickHouse.
func flakyHarness(t *testing.T, flaky *flakySink) (*harness, driver.Conn, chconn.Config) {
	conn, ch := stacktest.ClickHouse(t, 90)
	h := newHarness(t, func(db string) writer.Sink {
		flaky.Sink = writer.NewClickHouseSink(conn, db)
		return flaky
	}, ch.Database)
	return h, conn, ch
}

func TestWriterRetriesFailedInsertsWithoutLoss(t *testing.T) {
	flaky := &flakySink{fails: 5}
	h, conn, ch := flakyHarness(t, flaky)
	stop := h.start()
	now := time.Now().UTC()
	var recs []*kgo.Record
	for i := range 500 {
		recs = append(recs, validRecord(t, h.topic, "ws_r", fmt.Sprintf("evt_%d", i), now))
	}
	h.send(recs...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == 500 },
		60*time.Second, 100*time.Millisecond)
	require.NoError(t, stop())
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	require.Greater(t, flaky.calls, 5, "failed inserts were retried")
}

func manyRecords(t testing.TB, topic string, from, n int, now time.Time) ([]*kgo.Record, map[string]bool) {
	var recs []*kgo.Record
	want := map[string]bool{}
	for i := from; i < from+n; i++ {
		ws := fmt.Sprintf("ws_%d", i%13)
		id := fmt.Sprintf("evt_%06d", i)
		want[ws+"/"+id] = true
		recs = append(recs, validRecord(t, topic, ws, id, now.Add(-time.Duration(i)*time.Millisecond)))
	}
	return recs, want
}

func requireExactly(t *testing.T, got map[string]int, want map[string]bool) {
	t.Helper()
	for id, n := range got {
		require.True(t, want[id], "unexpected stored id %s", id)
		require.Equal(t, 1, n, "visible duplicate of %s", id)
	}
	require.Len(t, got, len(want), "every accepted event stored exactly once")
}

// TestTwoWritersShareThePartitionsAndOneTakesOver runs two instances in one
// group, stops one mid-stream, and checks the other takes its partitions
// over with nothing lost and nothing doubled.
func TestTwoWritersShareThePartitionsAndOneTakesOver(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	h := newHarness(t, func(db string) writer.Sink { return writer.NewClickHouseSink(conn, db) }, ch.Database)
	now := time.Now().UTC()
	stopA := h.start()
	regA := h.reg
	stopB := h.start()
	regB := h.reg

	gauge := func(reg *prometheus.Registry, name string) float64 {
		h.reg = reg
		return h.metric(name)
	}
	require.Eventually(t, func() bool {
		a, b := gauge(regA, "audittrail_writer_assigned_partitions"), gauge(regB, "audittrail_writer_assigned_partitions")
		return a > 0 && b > 0 && a+b == 4
	}, 60*time.Second, 50*time.Millisecond, "the two instances share the 4 partitions")

	first, want := manyRecords(t, h.topic, 0, 3000, now)
	h.send(first...)
	inserted := func(reg *prometheus.Registry) float64 { return gauge(reg, "audittrail_writer_rows_inserted_total") }
	require.Eventually(t, func() bool { return inserted(regA) > 0 && inserted(regB) > 0 }, 60*time.Second, 50*time.Millisecond,
		"both instances take part")

	require.NoError(t, stopA())
	second, more := manyRecords(t, h.topic, 3000, 3000, now)
	h.send(second...)
	for id := range more {
		want[id] = true
	}
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) >= len(want) },
		60*time.Second, 100*time.Millisecond)
	require.NoError(t, stopB())
	requireExactly(t, stacktest.VisibleIDs(t, conn, ch.Database), want)
}

// TestIdempotencyWindowOutlivesTheWriter stores events with one writer,
// then resends their ids with other timestamps to a new instance: the new
// instance loads the ids its partitions stored from the registry and
// leaves the resends out.
func TestIdempotencyWindowOutlivesTheWriter(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	h := newHarness(t, func(db string) writer.Sink { return writer.NewClickHouseSink(conn, db) }, ch.Database)
	now := time.Now().UTC().Truncate(time.Millisecond)
	var recs []*kgo.Record
	want := map[string]bool{}
	for i := range 200 {
		ws, id := fmt.Sprintf("ws_%d", i%9), fmt.Sprintf("evt_%04d", i)
		recs = append(recs, validRecord(t, h.topic, ws, id, now.Add(-time.Duration(i)*time.Second)))
		want[ws+"/"+id] = true
	}
	stop := h.start()
	h.send(recs...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == len(want) },
		60*time.Second, 100*time.Millisecond)
	require.NoError(t, stop())

	stop = h.start() // a new instance: its window starts from the registry
	var again []*kgo.Record
	for i := range 100 {
		again = append(again, validRecord(t, h.topic, fmt.Sprintf("ws_%d", i%9), fmt.Sprintf("evt_%04d", i), now.Add(time.Hour)))
	}
	again = append(again, validRecord(t, h.topic, "ws_0", "evt_new", now))
	want["ws_0/evt_new"] = true
	h.send(again...)
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_rows_inserted_total") == 1 },
		60*time.Second, 50*time.Millisecond, "only the new event is stored")
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_duplicate_ids_total") == 100 },
		30*time.Second, 50*time.Millisecond, "the resends are left out")
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_idempotency_window_ids") == 201 },
		30*time.Second, 50*time.Millisecond, "the window holds every stored id")
	require.NoError(t, stop())
	requireExactly(t, stacktest.VisibleIDs(t, conn, ch.Database), want)
	var later uint64
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM %s.%s WHERE timestamp_ns >= %d",
		ch.Database, migrations.Table, now.Add(time.Hour).UnixNano())).Scan(&later))
	require.Zero(t, later, "the first versions stay")
}

// TestClickHouseOutageLosesNothing cuts the writer's connection to the real
// server (through a proxy) while events arrive, then restores it.
func TestClickHouseOutageLosesNothing(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	proxy := stacktest.NewProxy(t, ch.Addr)
	viaProxy := ch
	viaProxy.Addr = proxy.Addr()
	viaProxy.DialTimeout = time.Second
	viaProxy.ReadTimeout = 5 * time.Second
	pconn, err := chconn.Open(context.Background(), viaProxy)
	require.NoError(t, err)
	defer pconn.Close()
	h := newHarness(t, func(db string) writer.Sink { return writer.NewClickHouseSink(pconn, db) }, ch.Database)
	now := time.Now().UTC()
	stop := h.start()

	first, want := manyRecords(t, h.topic, 0, 500, now)
	h.send(first...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == 500 }, 60*time.Second, 50*time.Millisecond)

	proxy.SetDown(true)
	second, more := manyRecords(t, h.topic, 500, 1500, now)
	h.send(second...)
	for id := range more {
		want[id] = true
	}
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_insert_errors_total") >= 2 }, 60*time.Second, 50*time.Millisecond,
		"inserts fail and are retried while ClickHouse is unreachable")
	require.Len(t, stacktest.VisibleIDs(t, conn, ch.Database), 500)

	proxy.SetDown(false)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) >= len(want) }, 90*time.Second, 100*time.Millisecond,
		"the writer resumes by itself")
	require.NoError(t, stop())
	requireExactly(t, stacktest.VisibleIDs(t, conn, ch.Database), want)
}

// gatedSink holds the insert of the batch that starts with event id gate
// until release is closed; the others go through at once. (With two
// inserts in flight, the second batch's insert may call the sink first.)
type gatedSink struct {
	writer.Sink
	gate    string
	release chan struct{}
	mu      sync.Mutex
	sizes   []int // rows per insert, in the order they were called
}

func (s *gatedSink) Insert(ctx context.Context, rows []migrations.Row) error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(rows))
	s.mu.Unlock()
	if len(rows) > 0 && rows[0].ID == s.gate {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Sink.Insert(ctx, rows)
}

// TestConcurrentInsertsCommitInBatchOrder: with two inserts in flight, the
// second batch is stored while the first one waits, but no offset is
// committed past the first batch until it is stored too; then every event
// is stored exactly once and the group's offset reaches the end.
func TestConcurrentInsertsCommitInBatchOrder(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	gated := &gatedSink{gate: "evt_0", release: make(chan struct{})}
	h := newHarness(t, func(db string) writer.Sink {
		gated.Sink = writer.NewClickHouseSink(conn, db)
		return gated
	}, ch.Database)
	h.cfg.BatchSize, h.cfg.BatchAge, h.cfg.InsertStreams = 1000, 5*time.Second, 2
	now := time.Now().UTC()
	var recs []*kgo.Record
	want := map[string]bool{}
	for i := range 3000 { // one workspace: one partition, three full batches
		id := fmt.Sprintf("evt_%d", i)
		recs = append(recs, validRecord(t, h.topic, "ws_s", id, now))
		want["ws_s/"+id] = true
	}
	committed := func() int64 {
		adm := kadm.NewClient(h.produce)
		offs, err := adm.FetchOffsets(context.Background(), h.cfg.Group)
		require.NoError(t, err)
		o, _ := offs.Lookup(h.topic, recs[0].Partition)
		return o.At
	}
	// 500 events are buffered first, so the next poll (up to BatchSize
	// records) brings the buffer past BatchSize: the batch is cut there.
	h.send(recs[:500]...)
	stop := h.start()
	require.Eventually(t, func() bool {
		mfs, err := h.reg.Gather()
		require.NoError(t, err)
		return slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "audittrail_writer_consumer_lag" })
	}, 30*time.Second, 20*time.Millisecond, "the writer fetched the first events")
	h.send(recs[500:]...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == 2000 },
		60*time.Second, 50*time.Millisecond, "the second and third batches are stored while the first waits")
	require.Never(t, func() bool { return committed() > recs[0].Offset }, 2*time.Second, 100*time.Millisecond,
		"nothing is committed past the first batch while it is not stored (marks are committed every second)")

	close(gated.release)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == len(want) },
		60*time.Second, 50*time.Millisecond)
	require.NoError(t, stop())
	requireExactly(t, stacktest.VisibleIDs(t, conn, ch.Database), want)
	require.Equal(t, recs[len(recs)-1].Offset+1, committed())
	require.Equal(t, float64(3000), h.metric("audittrail_writer_rows_inserted_total"))
	gated.mu.Lock()
	defer gated.mu.Unlock()
	require.Equal(t, []int{1000, 1000, 1000}, gated.sizes, "a batch is cut at BatchSize rows, even inside a larger poll")
}

// TestAResendWeeksLaterIsLeftOut: the idempotency window spans the
// retention window by default, so an id stored 60 days ago (registered
// then) is not stored again when it comes back with another timestamp; a
// window bounded by DedupeMaxIDs loads only the newest ids and says how far
// back it reaches.
func TestAResendWeeksLaterIsLeftOut(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	sink := writer.NewClickHouseSink(conn, ch.Database)
	h := newHarness(t, func(string) writer.Sink { return sink }, ch.Database)
	require.Equal(t, 91*24*time.Hour, h.cfg.DedupeWindow, "the default window is the retention window and a day")
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	stored := now.Add(-60 * 24 * time.Hour)

	// Sixty days ago: 100 events stored from partition 0, one a second.
	var rows []migrations.Row
	var ids []idwindow.StoredID
	for i := range 100 {
		ts := stored.Add(time.Duration(i) * time.Second)
		e := event.Event{ID: fmt.Sprintf("evt_old_%03d", i), WorkspaceID: "ws_old", Event: "Source Created", Category: "Sources",
			Timestamp: ts, ReceivedAt: ts, Actor: event.Actor{Type: "user", ID: "u"}}
		rows = append(rows, migrations.RowOf(&e))
		ids = append(ids, idwindow.StoredID{Topic: h.topic, Partition: 0, StoredAt: ts, WorkspaceID: e.WorkspaceID, ID: e.ID, TimestampNs: ts.UnixNano()})
	}
	require.NoError(t, sink.Insert(ctx, rows))
	require.NoError(t, sink.Register(ctx, ids))
	want := map[string]bool{}
	for _, r := range rows {
		want[r.WorkspaceID+"/"+r.ID] = true
	}

	// Today every one of them is resent with a new timestamp, next to one
	// new event, all on partition 0.
	var again []*kgo.Record
	for _, r := range rows {
		rec := validRecord(t, h.topic, r.WorkspaceID, r.ID, now)
		rec.Partition = 0
		again = append(again, rec)
	}
	fresh := validRecord(t, h.topic, "ws_old", "evt_new", now)
	fresh.Partition = 0
	again = append(again, fresh)
	want["ws_old/evt_new"] = true
	pin, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.DefaultProduceTopic(h.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer pin.Close()
	h.produce = pin

	stop := h.start()
	h.send(again...)
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_rows_inserted_total") == 1 },
		60*time.Second, 50*time.Millisecond, "only the new event is stored")
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_duplicate_ids_total") == 100 },
		30*time.Second, 50*time.Millisecond, "the resends sixty days later are left out")
	require.Equal(t, (91 * 24 * time.Hour).Seconds(), h.metric("audittrail_writer_idempotency_window_reach_seconds"))
	require.NoError(t, stop())
	requireExactly(t, stacktest.VisibleIDs(t, conn, ch.Database), want)

	// A window bounded to 40 ids loads the newest 40 of the partition and
	// reports that it reaches back less than configured.
	h.cfg.DedupeMaxIDs = 40
	stop = h.start() // the same group: nothing is replayed
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_idempotency_window_ids") == 40 },
		60*time.Second, 50*time.Millisecond, "the newest 40 ids are loaded")
	reach := h.metric("audittrail_writer_idempotency_window_reach_seconds")
	require.Less(t, reach, (61 * 24 * time.Hour).Seconds())
	require.Greater(t, reach, (59 * 24 * time.Hour).Seconds())
	require.NoError(t, stop())
	recent, err := sink.Recent(ctx, h.topic, 0, now.Add(-91*24*time.Hour), 40)
	require.NoError(t, err)
	require.Len(t, recent, 40)
	require.Equal(t, "evt_new", recent[len(recent)-1].ID, "newest last")
	require.Equal(t, "evt_old_061", recent[0].ID)
}

// TestWriterStoresChangesAndPropertiesAsEncoded checks the stored changes
// and properties: kept as they are when written as the ingest gateway
// writes them, and written so (keys sorted, no space around them, old
// before new; each old and new value as it was sent) when a direct
// producer wrote them otherwise.
func TestWriterStoresChangesAndPropertiesAsEncoded(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	h := newHarness(t, func(db string) writer.Sink { return writer.NewClickHouseSink(conn, db) }, ch.Database)
	ts := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339Nano)
	record := func(id, rest string) *kgo.Record {
		return &kgo.Record{Topic: h.topic, Key: []byte("ws_1"), Value: []byte(fmt.Sprintf(
			`{"id":%q,"workspace_id":"ws_1","event":"Source Modified","timestamp":%q,"received_at":%q,"actor":{"type":"user","id":"usr_1"}%s}`,
			id, ts, ts, rest))}
	}
	gateway := validRecord(t, h.topic, "ws_1", "as_encoded", time.Now().UTC().Add(-time.Hour))
	h.send(gateway,
		record("compact", `,"changes":{"a":{"old":1,"new":[1, 2]},"b":{"new":"x"},"c":{}},"properties":{"k": [true]}`),
		record("spaced", `, "changes": {"b": {"new": "x"}, "a": {"new": 2, "old": {"k": 1}}}, "properties": {"k":"v"}`),
		record("escaped", `,"changes":{"na\u006de":{"old":"\u00e9"}}`),
		record("none", ``),
	)
	stop := h.start()
	defer func() { require.NoError(t, stop()) }()
	got := map[string][2]string{}
	require.Eventually(t, func() bool {
		rows, err := conn.Query(context.Background(), "SELECT id, changes, properties FROM "+ch.Database+"."+migrations.Table)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var id, changes, props string
			require.NoError(t, rows.Scan(&id, &changes, &props))
			got[id] = [2]string{changes, props}
		}
		return len(got) == 5
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, map[string][2]string{
		"as_encoded": {`{"name":{"old":"a","new":"b"}}`, `{}`},
		"compact":    {`{"a":{"old":1,"new":[1, 2]},"b":{"new":"x"},"c":{}}`, `{"k": [true]}`},
		"spaced":     {`{"a":{"old":{"k": 1},"new":2},"b":{"new":"x"}}`, `{"k":"v"}`},
		"escaped":    {`{"name":{"old":"\u00e9"}}`, `{}`},
		"none":       {`{}`, `{}`},
	}, got)
}

// TestRegistryFailuresAreRetriedAndCountedApart checks that failed id
// registry writes are retried until they succeed, count in their own
// metric (not as failed inserts), and lose nothing.
func TestRegistryFailuresAreRetriedAndCountedApart(t *testing.T) {
	flaky := &flakySink{registerFails: 3}
	h, conn, ch := flakyHarness(t, flaky)
	stop := h.start()
	recs, want := manyRecords(t, h.topic, 0, 500, time.Now().UTC())
	h.send(recs...)
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_id_registry_errors_total") >= 3 },
		30*time.Second, 50*time.Millisecond, "registry failures counted")
	require.Eventually(t, func() bool {
		var n uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM "+ch.Database+"."+migrations.IDsTable).Scan(&n)
		return err == nil && n == 500
	}, 30*time.Second, 50*time.Millisecond, "every stored id registered after the retries")
	require.NoError(t, stop())
	requireExactly(t, stacktest.VisibleIDs(t, conn, ch.Database), want)
	require.Zero(t, h.metric("audittrail_writer_insert_errors_total"), "registry failures are not insert failures")
}
