package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/deadletter"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/topics"
)

// writer runs dlq writer with args.
func writer(ctx context.Context, out io.Writer, args ...string) (int, error) {
	return run(ctx, append([]string{"writer"}, args...), out, io.Discard, quiet)
}

func TestWriterUsageErrorsNameTheFlag(t *testing.T) {
	for _, args := range [][]string{
		nil, {"purge"}, {"replay"}, {"replay", "-all", "-at", "0:1"}, {"replay", "-at", "zero"},
		{"list", "-limit", "-1"}, {"list", "-brokers", ""}, {"list", "-nope"}, {"list", "extra"},
	} {
		code, err := writer(context.Background(), &bytes.Buffer{}, args...)
		require.Equal(t, 2, code, "%v", args)
		require.Error(t, err, "%v", args)
		require.Regexp(t, `usage: dlq writer\|forwarder list\|replay|flag -|-nope|unexpected argument "extra"|replay needs`, err.Error(), "%v", args)
	}
	code, err := writer(context.Background(), io.Discard, "list", "-h")
	require.NoError(t, err)
	require.Zero(t, code, "-h prints the flags and succeeds")
}

func TestListAndReplay(t *testing.T) {
	names := stacktest.Topics(t, 2, "events", "dlq")
	events, dlq := names[0], names[1]
	t.Setenv("AUDITTRAIL_KAFKA_BROKERS", strings.Join(stacktest.Brokers(), ","))
	t.Setenv("AUDITTRAIL_KAFKA_TOPIC", events)
	t.Setenv("AUDITTRAIL_WRITER_DLQ_TOPIC", dlq)

	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var recs []*kgo.Record
	for i := range 3 {
		recs = append(recs, &kgo.Record{Topic: dlq, Partition: int32(i % 2), Key: []byte("ws_1"), Value: []byte(fmt.Sprintf("poison %d", i)),
			Headers: []kgo.RecordHeader{
				{Key: topics.HeaderEvent, Value: []byte("Source Created")},
				{Key: topics.HeaderDLQReason, Value: []byte([]string{"undecodable: x", "invalid: y", "undecodable: z"}[i])},
				{Key: topics.HeaderDLQTopic, Value: []byte(events)},
				{Key: topics.HeaderDLQPartition, Value: []byte("1")},
				{Key: topics.HeaderDLQOffset, Value: []byte(fmt.Sprint(40 + i))},
			}})
	}
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())

	var out bytes.Buffer
	code, err := writer(ctx, &out, "list")
	require.NoError(t, err)
	require.Equal(t, 0, code)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, out.String())
	require.Contains(t, out.String(), "from "+events+"/1/41")

	out.Reset()
	_, err = writer(ctx, &out, "list", "-reason", "undecodable")
	require.NoError(t, err)
	require.Len(t, strings.Split(strings.TrimSpace(out.String()), "\n"), 2)

	out.Reset()
	_, err = writer(ctx, &out, "list", "-limit", "1")
	require.NoError(t, err)
	require.Len(t, strings.Split(strings.TrimSpace(out.String()), "\n"), 1)

	out.Reset()
	code, err = writer(ctx, &out, "replay", "-all", "-reason", "undecodable", "-dry-run")
	require.NoError(t, err)
	require.Zero(t, code)
	require.Equal(t, 2, strings.Count(out.String(), "would replay "), out.String())
	require.Contains(t, out.String(), "(undecodable: z) to "+events)

	out.Reset()
	code, err = writer(ctx, &out, "replay", "-at", "1:0")
	require.NoError(t, err)
	require.Equal(t, 0, code)
	require.Contains(t, out.String(), "replayed 1 letters")

	cons, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.ConsumeTopics(events),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cons.Close()
	var got []*kgo.Record
	for len(got) < 1 && ctx.Err() == nil {
		got = append(got, cons.PollFetches(ctx).Records()...)
	}
	require.Len(t, got, 1)
	require.Equal(t, "poison 1", string(got[0].Value))
	require.Equal(t, "ws_1", string(got[0].Key))
	hdr := map[string]string{}
	for _, h := range got[0].Headers {
		hdr[h.Key] = string(h.Value)
	}
	require.Equal(t, map[string]string{topics.HeaderEvent: "Source Created", deadletter.HeaderReplayedFrom: dlq + "/1/0"}, hdr)
}
