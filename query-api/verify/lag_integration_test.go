package verify_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/verify"
)

// TestSealerCaughtUp reads a group's lag on the real broker: not caught
// up until it committed the end of every partition holding records.
func TestSealerCaughtUp(t *testing.T) {
	topic := stacktest.Topics(t, 2, "verify-events")[0]
	ctx := context.Background()
	opts := []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	defer cl.Close()
	group := "verify-sealer-" + stacktest.Suffix()
	adm := kadm.NewClient(cl)
	t.Cleanup(func() { _, _ = adm.DeleteGroup(context.Background(), group) })

	ok, err := verify.SealerCaughtUp(ctx, opts, group, topic)
	require.NoError(t, err)
	require.True(t, ok, "an empty topic")
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("x")}, &kgo.Record{Partition: 1, Value: []byte("y")}).FirstErr())
	ok, err = verify.SealerCaughtUp(ctx, opts, group, topic)
	require.NoError(t, err)
	require.False(t, ok, "nothing committed")
	commit := func(at int64) {
		var o kadm.Offsets
		o.Add(kadm.Offset{Topic: topic, Partition: 1, At: at})
		resp, err := adm.CommitOffsets(ctx, group, o)
		require.NoError(t, err)
		require.NoError(t, resp.Error())
	}
	commit(1)
	ok, err = verify.SealerCaughtUp(ctx, opts, group, topic)
	require.NoError(t, err)
	require.False(t, ok, "one record behind")
	commit(2)
	ok, err = verify.SealerCaughtUp(ctx, opts, group, topic)
	require.NoError(t, err)
	require.True(t, ok)
}
