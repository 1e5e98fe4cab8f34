package deadletter

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/backoff"
	"github.com/audittrail/audittrail/schemas/topics"
)

func cluster(t *testing.T) ([]kgo.Opt, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "dlq"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return opts, cl
}

// readAll reads every letter of the dlq topic from the offsets in from.
func readAll(t *testing.T, opts []kgo.Opt, from map[int32]int64) []Letter {
	t.Helper()
	var got []Letter
	require.NoError(t, Read(context.Background(), opts, "dlq", from, func(l Letter) bool { got = append(got, l); return true }))
	return got
}

func TestParkAddsTheReasonAndSourceAndRequeueReplacesTheReason(t *testing.T) {
	opts, cl := cluster(t)
	p := NewParker(cl, "dlq", backoff.Policy{Min: time.Millisecond, Max: time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r := &kgo.Record{Topic: "events", Partition: 3, Offset: 41, Key: []byte("ws_1"), Value: []byte("poison"),
		Headers: []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte("Source Created")}}}
	long := "rejected: " + strings.Repeat("x", 2000)
	require.NoError(t, p.Park(context.Background(), r, long, kgo.RecordHeader{Key: topics.HeaderForwardTarget, Value: []byte("source")}))

	got := readAll(t, opts, nil)
	require.Len(t, got, 1)
	l := got[0]
	require.Equal(t, long[:MaxReason]+"...", l.Reason)
	require.Equal(t, "events", l.SourceTopic)
	require.Equal(t, int32(3), l.SourcePartition)
	require.Equal(t, int64(41), l.SourceOffset)
	require.Equal(t, "ws_1", string(l.Key))
	require.Equal(t, "poison", string(l.Value))
	require.Equal(t, []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte("Source Created")},
		{Key: topics.HeaderForwardTarget, Value: []byte("source")}}, l.Headers)
	require.Equal(t, "source", l.Header(topics.HeaderForwardTarget))

	// A requeued letter keeps its headers, with the new reason and one
	// more replay.
	raw := &kgo.Record{Key: l.Key, Value: l.Value, Headers: append(append([]kgo.RecordHeader{}, l.Headers...),
		kgo.RecordHeader{Key: topics.HeaderDLQReason, Value: []byte(l.Reason)}, kgo.RecordHeader{Key: HeaderReplays, Value: []byte("2")})}
	require.NoError(t, p.Requeue(context.Background(), raw, "replay failed: 500"))
	got = readAll(t, opts, map[int32]int64{l.Partition: l.Offset + 1})
	require.Len(t, got, 1, "read from past the first letter")
	require.Equal(t, "replay failed: 500", got[0].Reason)
	require.Equal(t, "3", got[0].Header(HeaderReplays))
	require.Equal(t, "source", got[0].Header(topics.HeaderForwardTarget))
}

func TestParkEndsWithItsContextWhenKafkaIsDown(t *testing.T) {
	_, cl := cluster(t)
	cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	p := NewParker(cl, "dlq", backoff.Policy{Min: time.Millisecond, Max: 10 * time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	err := p.Park(ctx, &kgo.Record{Topic: "events", Partition: 1, Offset: 7}, "undecodable: x")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "dead-letter events/1/7")
}

func TestReadStopsWhenToldAndReadsNothingFromAnEmptyTopic(t *testing.T) {
	opts, cl := cluster(t)
	require.Empty(t, readAll(t, opts, nil))
	for i := range 4 {
		require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "dlq", Partition: int32(i % 2), Value: []byte{byte('a' + i)}}).FirstErr())
	}
	require.Len(t, readAll(t, opts, nil), 4)
	require.Len(t, readAll(t, opts, map[int32]int64{0: 1, 1: 5}), 1, "partition 0 from offset 1, partition 1 past its end")
	n := 0
	require.NoError(t, Read(context.Background(), opts, "dlq", nil, func(Letter) bool { n++; return n < 2 }))
	require.Equal(t, 2, n)
}

func TestGroupRemembersTheReplayWithoutJoining(t *testing.T) {
	opts, cl := cluster(t)
	ctx := context.Background()
	for i := range 3 {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "dlq", Partition: 1, Value: []byte{byte('a' + i)}}).FirstErr())
	}
	g := NewGroup(cl, "replay", "dlq")
	replayed, err := g.Replayed(ctx)
	require.NoError(t, err)
	require.Empty(t, replayed, "a group that never committed replayed nothing")

	letters := readAll(t, opts, replayed)
	require.Len(t, letters, 3)
	require.NoError(t, g.Done(ctx, letters[1]))
	replayed, err = g.Replayed(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]int64{1: 2}, replayed)
	rest := readAll(t, opts, replayed)
	require.Len(t, rest, 1)
	require.Equal(t, "c", string(rest[0].Value))
}
