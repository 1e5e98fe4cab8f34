package emitter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func sample(ws, id string) event.Event {
	return event.Event{ID: id, WorkspaceID: ws, Event: "Source Created", Timestamp: now.Add(-time.Minute),
		Actor: event.Actor{Type: "user", ID: "usr_1"}}
}

func newCluster(t *testing.T, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, "audit")}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func newEmitter(t *testing.T, cfg Config, addrs ...string) *Emitter {
	t.Helper()
	if cfg.Topic == "" {
		cfg.Topic = "audit"
	}
	em, err := New(cfg, []kgo.Opt{kgo.SeedBrokers(addrs...)}, clock)
	require.NoError(t, err)
	t.Cleanup(func() {
		// Tests with an unreachable broker leave events buffered: fail
		// them rather than wait for the delivery timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = em.Shutdown(ctx)
	})
	return em
}

// consume reads n records of topic from the cluster at addrs.
func consume(t *testing.T, n int, topic string, addrs ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n && ctx.Err() == nil {
		recs = append(recs, cl.PollFetches(ctx).Records()...)
	}
	require.Len(t, recs, n)
	return recs
}

// unusedAddr is a local address nothing listens on while the test runs (a
// broker that is down).
func unusedAddr(t *testing.T) string {
	t.Helper()
	return proctest.RefusedAddr(t)
}

func TestEmitPublishesValidatedEventsKeyedByWorkspace(t *testing.T) {
	c := newCluster(t, 3)
	em := newEmitter(t, Config{}, c.ListenAddrs()...)

	ctx := context.Background()
	require.NoError(t, em.Emit(ctx, sample("ws_1", "")))

	bad := sample("ws_1", "")
	bad.Event = "Source Exploded"
	var ve *event.ValidationError
	err := em.Emit(ctx, bad)
	require.ErrorAs(t, err, &ve, "nothing invalid is sent")
	require.False(t, Retryable(err))

	recs := consume(t, 1, "audit", c.ListenAddrs()...)
	require.Equal(t, "ws_1", string(recs[0].Key))
	require.Equal(t, []kgo.RecordHeader{
		{Key: topics.HeaderEvent, Value: []byte("Source Created")},
		{Key: topics.HeaderSchemaVersion, Value: []byte(event.SchemaVersion)},
	}, recs[0].Headers)
	got, err := event.Decode(recs[0].Value)
	require.NoError(t, err)
	require.NotEmpty(t, got.ID)
	require.Equal(t, "Sources", got.Category)
	require.Equal(t, now, got.ReceivedAt)
	require.Equal(t, Stats{Delivered: 1, Failed: 1, PeakBuffered: 1}, em.Stats())
}

// murmur2Vectors are the Java client's own test vectors for
// org.apache.kafka.common.utils.Utils.murmur2 (UtilsTest.testMurmur2):
// the signed 32-bit hash of each key.
var murmur2Vectors = []struct {
	key  string
	hash int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	{"abc", 479470107},
}

// javaPartition is the Java client's choice for a keyed record:
// Utils.toPositive(Utils.murmur2(key)) % numPartitions.
func javaPartition(hash int32, n int) int32 {
	return int32((uint32(hash) & 0x7fffffff) % uint32(n))
}

func TestPartitionerMatchesTheJavaClient(t *testing.T) {
	for _, n := range []int{1, 3, 6, 7, 12, 100, 1000} {
		tp := Partitioner().ForTopic("audit")
		for _, v := range murmur2Vectors {
			got := tp.Partition(&kgo.Record{Key: []byte(v.key)}, n)
			require.Equal(t, javaPartition(v.hash, n), int32(got), "key %q, %d partitions", v.key, n)
		}
	}
}

func TestRecordsLandOnTheJavaClientsPartition(t *testing.T) {
	const partitions = 12
	c := newCluster(t, partitions)
	em := newEmitter(t, Config{}, c.ListenAddrs()...)
	for i, v := range murmur2Vectors {
		require.NoError(t, em.Emit(context.Background(), sample(v.key, fmt.Sprintf("evt-%d", i))))
	}
	want := map[string]int32{}
	for _, v := range murmur2Vectors {
		want[v.key] = javaPartition(v.hash, partitions)
	}
	// The vectors alone could land on one partition by chance; check that
	// they do not, so the assertion below says something.
	distinct := map[int32]bool{}
	for _, p := range want {
		distinct[p] = true
	}
	require.Greater(t, len(distinct), 2)
	for _, r := range consume(t, len(murmur2Vectors), "audit", c.ListenAddrs()...) {
		require.Equal(t, want[string(r.Key)], r.Partition, "workspace %q", r.Key)
	}
}

func TestEmitAsyncCallsBackExactlyOncePerEvent(t *testing.T) {
	c := newCluster(t, 6)
	em := newEmitter(t, Config{MaxBufferedEvents: 64}, c.ListenAddrs()...)

	const n = 2000
	var mu sync.Mutex
	calls := map[string]int{}
	var failures []error
	for i := range n {
		ev := sample(fmt.Sprintf("ws_%d", i%17), fmt.Sprintf("evt-%04d", i))
		if i%100 == 0 {
			ev.Actor.Type = "robot" // invalid: reported at once
		}
		em.EmitAsync(context.Background(), ev, func(got event.Event, err error) {
			mu.Lock()
			defer mu.Unlock()
			calls[got.ID]++
			if err != nil {
				failures = append(failures, err)
			} else {
				require.Equal(t, now, got.ReceivedAt)
			}
		})
	}
	require.NoError(t, em.Flush(context.Background()))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, calls, n)
	for id, k := range calls {
		require.Equal(t, 1, k, id)
	}
	require.Len(t, failures, n/100)
	for _, err := range failures {
		var ve *event.ValidationError
		require.ErrorAs(t, err, &ve)
	}
	st := em.Stats()
	require.Equal(t, int64(n-n/100), st.Delivered)
	require.Equal(t, int64(n/100), st.Failed)
	require.Zero(t, st.Buffered)
	require.LessOrEqual(t, st.PeakBuffered, 64)
	require.Len(t, consume(t, n-n/100, "audit", c.ListenAddrs()...), n-n/100)
}

func TestBackPressureHoldsTheBufferAtItsBound(t *testing.T) {
	// The broker is unreachable, so nothing completes: every emitter
	// beyond the bound must block rather than buffer.
	addr := unusedAddr(t)
	const bound, producers = 20, 100
	em := newEmitter(t, Config{MaxBufferedEvents: bound}, addr)

	ctx, cancel := context.WithCancel(context.Background())
	var returned, callbacks atomic.Int64
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for i := range producers {
		wg.Go(func() {
			em.EmitAsync(ctx, sample("ws_1", fmt.Sprintf("evt-%03d", i)), func(ev event.Event, err error) {
				callbacks.Add(1)
				mu.Lock()
				errs[ev.ID] = err
				mu.Unlock()
			})
			returned.Add(1)
		})
	}
	require.Eventually(t, func() bool {
		st := em.Stats()
		return st.Buffered == bound && st.Waiting == producers-bound
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, int64(bound), returned.Load(), "only the first %d calls return", bound)
	require.Zero(t, callbacks.Load())
	require.LessOrEqual(t, em.cl.BufferedProduceRecords(), int64(bound), "the Kafka client holds no more than the bound")

	cancel() // the waiting callers give up
	wg.Wait()
	require.Equal(t, int64(producers-bound), callbacks.Load())
	mu.Lock()
	for _, err := range errs {
		require.ErrorIs(t, err, context.Canceled)
		require.True(t, Retryable(err))
	}
	mu.Unlock()
	require.Equal(t, bound, em.Stats().PeakBuffered)

	// Shutdown cannot deliver the buffered events: each is reported.
	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	require.ErrorIs(t, em.Shutdown(sctx), context.DeadlineExceeded)
	require.Equal(t, int64(producers), callbacks.Load(), "every callback fired once")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, errs, producers)
	closed := 0
	for _, err := range errs {
		if errors.Is(err, ErrClosed) {
			closed++
		}
	}
	require.Equal(t, bound, closed)

	var late error
	em.EmitAsync(context.Background(), sample("ws_1", "late"), func(_ event.Event, err error) { late = err })
	require.ErrorIs(t, late, ErrClosed, "reported before EmitAsync returns")
}

func TestBackPressureBoundsBufferedBytes(t *testing.T) {
	addr := unusedAddr(t)
	em := newEmitter(t, Config{MaxBufferedBytes: MaxEventBytes}, addr)
	big := sample("ws_1", "")
	big.Properties = json.RawMessage(fmt.Sprintf(`{"note": %q}`, strings.Repeat("x", 100<<10)))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var callbacks atomic.Int64
	for i := range 40 {
		ev := big
		ev.ID = fmt.Sprintf("big-%02d", i)
		wg.Go(func() { em.EmitAsync(ctx, ev, func(event.Event, error) { callbacks.Add(1) }) })
	}
	// 100 KiB events in a 1 MiB budget: 10 fit, 30 wait.
	require.Eventually(t, func() bool {
		st := em.Stats()
		return st.Buffered == 10 && st.Waiting == 30
	}, 10*time.Second, 5*time.Millisecond)
	require.LessOrEqual(t, em.Stats().BufferedBytes, int64(MaxEventBytes))
	cancel()
	wg.Wait()
	require.Equal(t, int64(30), callbacks.Load())
}

func TestOversizedEventIsRejectedWithoutTakingSpace(t *testing.T) {
	c := newCluster(t, 1)
	em := newEmitter(t, Config{}, c.ListenAddrs()...)
	ev := sample("ws_1", "huge")
	ev.Properties = json.RawMessage(fmt.Sprintf(`{"note": %q}`, strings.Repeat("x", MaxEventBytes)))
	err := em.Emit(context.Background(), ev)
	require.ErrorIs(t, err, ErrTooLarge)
	require.False(t, Retryable(err))
	require.Zero(t, em.Stats().PeakBuffered)
}

func TestBrokerDownIsReportedAndARetrySucceedsOnceItIsBack(t *testing.T) {
	// A port free now, which the broker binds later (a reserved one could
	// not be bound).
	tcp, err := net.ResolveTCPAddr("tcp", proctest.FreeAddr())
	require.NoError(t, err)
	addr, port := tcp.String(), tcp.Port
	em := newEmitter(t, Config{DeliveryTimeout: time.Second}, addr)

	ev := sample("ws_1", "evt-retry")
	err = em.Emit(context.Background(), ev)
	require.ErrorIs(t, err, kgo.ErrRecordTimeout, "a down broker is an error, not a silent drop")
	require.True(t, Retryable(err))
	require.Equal(t, int64(1), em.Stats().Failed)

	// The broker comes up on the same address; the same event goes through.
	dir := t.TempDir()
	c := newCluster(t, 3, kfake.Ports(port), kfake.DataDir(dir))
	require.Eventually(t, func() bool { return em.Emit(context.Background(), ev) == nil },
		20*time.Second, 10*time.Millisecond)
	recs := consume(t, 1, "audit", c.ListenAddrs()...)
	got, err := event.Decode(recs[0].Value)
	require.NoError(t, err)
	require.Equal(t, "evt-retry", got.ID)

	// It goes away again after having worked: Emit still answers within
	// the delivery timeout, with an error rather than a silent drop.
	c.Close()
	err = em.Emit(context.Background(), sample("ws_1", "evt-2"))
	require.True(t, errors.Is(err, ErrNotAcknowledged) || errors.Is(err, kgo.ErrRecordTimeout), "%v", err)
	require.True(t, Retryable(err))

	// The broker restarts with its data, as a real one does.
	c2 := newCluster(t, 3, kfake.Ports(port), kfake.DataDir(dir))
	require.Eventually(t, func() bool { return em.Emit(context.Background(), sample("ws_1", "evt-2")) == nil },
		20*time.Second, 10*time.Millisecond)
	require.Contains(t, consumeIDs(t, "audit", c2.ListenAddrs()...), "evt-2")
}

// consumeIDs returns the ids of the events in topic (each id once).
func consumeIDs(t *testing.T, topic string, addrs ...string) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic))
	require.NoError(t, err)
	defer cl.Close()
	ids := map[string]bool{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		recs := cl.PollFetches(ctx).Records()
		cancel()
		if len(recs) == 0 {
			return ids
		}
		for _, r := range recs {
			e, err := event.Decode(r.Value)
			require.NoError(t, err)
			ids[e.ID] = true
		}
	}
}

func TestEmitHonoursContextWhileTheBufferIsFull(t *testing.T) {
	addr := unusedAddr(t)
	em := newEmitter(t, Config{MaxBufferedEvents: 1}, addr)
	em.EmitAsync(context.Background(), sample("ws_1", "first"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := em.Emit(ctx, sample("ws_1", "second"))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, 1, em.Stats().Buffered, "the second event never entered the buffer")
}

func TestFlushDeliversLingeringEvents(t *testing.T) {
	c := newCluster(t, 1)
	em := newEmitter(t, Config{Linger: time.Second}, c.ListenAddrs()...)
	var delivered atomic.Int64
	for i := range 10 {
		em.EmitAsync(context.Background(), sample("ws_1", fmt.Sprintf("e%d", i)), func(_ event.Event, err error) {
			if err == nil {
				delivered.Add(1)
			}
		})
	}
	require.NoError(t, em.Flush(context.Background()))
	require.Equal(t, int64(10), delivered.Load(), "Flush returns after every callback")
	require.NoError(t, em.Shutdown(context.Background()))
	require.ErrorIs(t, em.Emit(context.Background(), sample("ws_1", "after")), ErrClosed)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{}.Validate())
	require.ErrorContains(t, Config{MaxBufferedBytes: 1000}.Validate(), "MaxBufferedBytes")
	require.ErrorContains(t, Config{Linger: time.Minute}.Validate(), "Linger")
	_, err := New(Config{MaxBufferedBytes: 1000}, nil, nil)
	require.Error(t, err)
}

// BenchmarkRecord measures the emitter's own work per event: validation
// against the contract and catalogue, and encoding.
func BenchmarkRecord(b *testing.B) {
	em, err := New(Config{Topic: "audit"}, []kgo.Opt{kgo.SeedBrokers("127.0.0.1:1")}, clock)
	require.NoError(b, err)
	defer em.Close()
	ev := sample("ws_1", "evt-1")
	ev.Changes = map[string]event.Change{"enabled": {Old: json.RawMessage("true"), New: json.RawMessage("false")}}
	b.ReportAllocs()
	for b.Loop() {
		e := ev
		if _, err := em.Record(&e); err != nil {
			b.Fatal(err)
		}
	}
}
