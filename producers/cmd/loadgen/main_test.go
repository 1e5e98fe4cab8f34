package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
)

func TestParseRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-target", "smtp", "-count", "1"},
		{"-target", "emitter"},
		{"-target", "emitter", "-count", "1", "-max-buffered", "0"},
		{"-target", "http", "-count", "1", "-token", ""},
		{"-target", "kafka", "-count", "1", "-batch", "0"},
	} {
		_, err := parse(args)
		require.Error(t, err, "%v", args)
	}
	o, err := parse([]string{"-target", "emitter", "-count", "10", "-max-buffered", "5"})
	require.NoError(t, err)
	require.Equal(t, 5, o.maxBuffered)
}

func TestRunThroughTheEmitterSendsEveryEvent(t *testing.T) {
	for _, target := range []string{"emitter", "kafka"} {
		t.Run(target, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "lg"))
			require.NoError(t, err)
			defer c.Close()
			o, err := parse([]string{"-target", target, "-brokers", c.ListenAddrs()[0], "-topic", "lg",
				"-count", "500", "-concurrency", "3", "-max-buffered", "16", "-quiet", "-seed", "1"})
			require.NoError(t, err)
			require.NoError(t, run(context.Background(), o))

			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("lg"))
			require.NoError(t, err)
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, "lg")
			require.NoError(t, err)
			var total int64
			offs.Each(func(o kadm.ListedOffset) { total += o.Offset })
			require.Equal(t, int64(500), total)
			fetched := cl.PollFetches(ctx).Records()
			require.NotEmpty(t, fetched)
			e, err := event.Decode(fetched[0].Value)
			require.NoError(t, err)
			require.Equal(t, e.WorkspaceID, string(fetched[0].Key))
		})
	}
}
