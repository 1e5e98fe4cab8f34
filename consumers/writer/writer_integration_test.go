package writer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/writer"
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

type harness struct {
	t       *testing.T
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
	w, err := writer.New(h.cfg, h.opts, h.sink, quietLog(), prometheus.NewRegistry(), nil)
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
	poison := []*kgo.Record{
		{Topic: h.topic, Key: []byte("ws_0"), Value: []byte("not json")},
		{Topic: h.topic, Key: []byte("ws_0"), Value: []byte(`{"workspace_id": "ws_0", "event": "Nope"}`)},
		{Topic: h.topic, Key: []byte("ws_other"), Value: validRecord(t, h.topic, "ws_0", "evt_wrong_key", now).Value},
	}
	expired := validRecord(t, h.topic, "ws_0", "evt_expired", now.Add(-91*24*time.Hour))
	recs = append(recs, poison...)
	recs = append(recs, expired)

	stop := h.start()
	h.send(recs...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) >= len(want) },
		60*time.Second, 100*time.Millisecond)
	require.NoError(t, stop())

	got := stacktest.VisibleIDs(t, conn, ch.Database)
	for id, n := range got {
		require.True(t, want[id], "unexpected stored id %s", id)
		require.Equal(t, 1, n, "visible duplicate of %s", id)
	}
	require.Len(t, got, len(want), "every accepted event stored")

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

	// A second writer in the same group starts after the committed offsets:
	// it stores nothing new and the set is unchanged.
	stop = h.start()
	h.send(validRecord(t, h.topic, "ws_0", "evt_after_restart", now))
	want["ws_0/evt_after_restart"] = true
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == len(want) },
		60*time.Second, 100*time.Millisecond)
	require.NoError(t, stop())
}

// flakySink fails the first n inserts, as a ClickHouse outage would.
type flakySink struct {
	mu    sync.Mutex
	fails int
	next  writer.Sink
	calls int
}

func (s *flakySink) Insert(ctx context.Context, rows []migrations.Row) error {
	s.mu.Lock()
	s.calls++
	fail := s.calls <= s.fails
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("clickhouse unavailable (simulated)")
	}
	return s.next.Insert(ctx, rows)
}

func TestWriterRetriesFailedInsertsWithoutLoss(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	flaky := &flakySink{fails: 5}
	h := newHarness(t, func(db string) writer.Sink {
		flaky.next = writer.NewClickHouseSink(conn, db)
		return flaky
	}, ch.Database)
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
