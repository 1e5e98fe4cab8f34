package emitter

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
)

// endOffsets returns the sum of the topic's high watermarks: the number of
// records the broker has acknowledged to acks=all producers.
func endOffsets(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	var sum int64
	offs.Each(func(o kadm.ListedOffset) {
		require.NoError(t, o.Err)
		sum += o.Offset
	})
	return sum
}

func TestIntegrationEmitReturnsOnlyAfterTheBrokerAcknowledged(t *testing.T) {
	topic := stacktest.Topics(t, 6, "emitter-ack")[0]
	brokers := stacktest.Brokers()
	em, err := New(Config{Topic: topic}, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil)
	require.NoError(t, err)
	defer em.Close()
	adm, cl := newAdmin(t, brokers)
	defer cl.Close()

	ts := time.Now().Add(-time.Minute)
	for i := range 20 {
		ev := event.Event{ID: fmt.Sprintf("ack-%02d", i), WorkspaceID: fmt.Sprintf("ws_%d", i%5), Event: "Warehouses Disabled",
			Timestamp: ts, Actor: event.Actor{Type: "user", ID: "usr_1"}}
		require.NoError(t, em.Emit(context.Background(), ev))
		// No waiting: when Emit returns, the high watermark (advanced only
		// once every in-sync replica has the record) already counts it.
		require.Equal(t, int64(i+1), endOffsets(t, adm, topic), "event %d acknowledged before Emit returned", i)
	}
}

func TestIntegrationAsyncEmitDeliversEverythingOnTheJavaPartitions(t *testing.T) {
	const partitions = 6
	topic := stacktest.Topics(t, partitions, "emitter-async")[0]
	brokers := stacktest.Brokers()
	em, err := New(Config{Topic: topic, MaxBufferedEvents: 500}, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil)
	require.NoError(t, err)
	defer em.Close()

	const n = 5000
	var mu sync.Mutex
	var failures []error
	ts := time.Now().Add(-time.Minute)
	for i := range n {
		ws := murmur2Vectors[i%len(murmur2Vectors)].key
		ev := event.Event{ID: fmt.Sprintf("async-%05d", i), WorkspaceID: ws, Event: "Source Modified", Timestamp: ts,
			Actor: event.Actor{Type: "access_token", ID: "tok_1"}}
		em.EmitAsync(context.Background(), ev, func(_ event.Event, err error) {
			if err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, em.Flush(ctx))
	require.Empty(t, failures)
	require.Equal(t, int64(n), em.Stats().Delivered)
	require.LessOrEqual(t, em.Stats().PeakBuffered, 500)

	adm, cl := newAdmin(t, brokers)
	defer cl.Close()
	require.Equal(t, int64(n), endOffsets(t, adm, topic))

	// Each workspace is on the partition the Java client would choose.
	want := map[string]int32{}
	for _, v := range murmur2Vectors {
		want[v.key] = javaPartition(v.hash, partitions)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic))
	require.NoError(t, err)
	defer consumer.Close()
	seen := 0
	for seen < n && ctx.Err() == nil {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			require.Equal(t, want[string(r.Key)], r.Partition, "workspace %q", r.Key)
			seen++
		})
	}
	require.Equal(t, n, seen)
}

func newAdmin(t *testing.T, brokers []string) (*kadm.Client, *kgo.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	return kadm.NewClient(cl), cl
}
