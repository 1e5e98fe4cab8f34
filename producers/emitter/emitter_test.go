package emitter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

func TestEmitPublishesValidatedEventsKeyedByWorkspace(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "audit"))
	require.NoError(t, err)
	defer c.Close()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	em, err := New(Config{Topic: "audit"}, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, func() time.Time { return now })
	require.NoError(t, err)
	defer em.Close()

	ctx := context.Background()
	ev := event.Event{WorkspaceID: "ws_1", Event: "Source Created", Timestamp: now.Add(-time.Minute),
		Actor: event.Actor{Type: "user", ID: "usr_1"}}
	require.NoError(t, em.Emit(ctx, ev))

	bad := ev
	bad.Event = "Source Exploded"
	var ve *event.ValidationError
	require.ErrorAs(t, em.Emit(ctx, bad), &ve, "nothing invalid is sent")

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("audit"))
	require.NoError(t, err)
	defer cl.Close()
	var recs []*kgo.Record
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(recs) < 1 && pctx.Err() == nil {
		recs = append(recs, cl.PollFetches(pctx).Records()...)
	}
	require.Len(t, recs, 1)
	require.Equal(t, "ws_1", string(recs[0].Key))
	require.Equal(t, "Source Created", string(recs[0].Headers[0].Value))
	require.Equal(t, topics.HeaderSchemaVersion, recs[0].Headers[1].Key)
	got, err := event.Decode(recs[0].Value)
	require.NoError(t, err)
	require.NotEmpty(t, got.ID)
	require.Equal(t, "Sources", got.Category)
	require.Equal(t, now, got.ReceivedAt)
}
