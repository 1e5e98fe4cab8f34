package kvtopic

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestTablesShareValuesThroughTheTopic(t *testing.T) {
	defer goleak.VerifyNone(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "settings"))
	require.NoError(t, err)
	defer c.Close()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	open := func(onChange func(string, []byte)) *Table {
		tb, err := New(opts, "settings", onChange)
		require.NoError(t, err)
		wg.Go(func() { _ = tb.Run(ctx) })
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		require.NoError(t, tb.WaitReady(wctx))
		return tb
	}
	a := open(nil)
	var mu sync.Mutex
	seen := map[string]string{}
	b := open(func(k string, v []byte) { mu.Lock(); seen[k] = string(v); mu.Unlock() })

	require.NoError(t, a.Put(ctx, "ws_1/forwarding", []byte(`{"a":1}`)))
	v, ok := a.Get("ws_1/forwarding")
	require.True(t, ok, "a writer reads its own write at once")
	require.JSONEq(t, `{"a":1}`, string(v))
	require.Eventually(t, func() bool {
		v, ok := b.Get("ws_1/forwarding")
		return ok && string(v) == `{"a":1}`
	}, 10*time.Second, 10*time.Millisecond, "another instance sees the value")
	mu.Lock()
	require.Equal(t, `{"a":1}`, seen["ws_1/forwarding"])
	mu.Unlock()

	require.NoError(t, a.Put(ctx, "ws_1/forwarding", []byte(`{"a":2}`)))
	require.NoError(t, a.Put(ctx, "ws_2/alerts", []byte(`{"b":1}`)))
	require.NoError(t, a.Put(ctx, "ws_2/alerts", nil))
	// A new instance loads the latest values before it is ready.
	c2 := open(nil)
	v, ok = c2.Get("ws_1/forwarding")
	require.True(t, ok)
	require.Equal(t, `{"a":2}`, string(v))
	_, ok = c2.Get("ws_2/alerts")
	require.False(t, ok, "an empty value deletes the key")
}
