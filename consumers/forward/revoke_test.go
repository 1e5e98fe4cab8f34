package forward

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// bareForwarder is a forwarder whose reading loop the test plays: records
// are handed to add, partitions revoked with forget, and settings applied
// directly.
func bareForwarder(t *testing.T, s *stack, cfg Config) *Forwarder {
	t.Helper()
	f, err := New(cfg, Deps{KafkaOpts: s.opts})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { f.work(ctx) })
	}
	t.Cleanup(func() {
		f.sched.close()
		cancel()
		wg.Wait()
		f.stopTimers()
		_ = f.table.Run(ctx) // returns at once; closes the table's client
		f.cl.Close()
	})
	return f
}

func (s *stack) record(t *testing.T, ev event.Event, offset int64) *kgo.Record {
	t.Helper()
	v, err := event.Marshal(&ev)
	require.NoError(t, err)
	return &kgo.Record{Topic: s.events, Partition: 0, Offset: offset, Key: []byte(ev.WorkspaceID), Value: v,
		Headers: []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte(ev.Event)}}}
}

// A partition revoked while its workspace's target fails, and later read
// again by the same instance (it came back in a rebalance), loses nothing:
// the records read again are delivered, and the revoked ones release their
// in-flight slots, also those revoked while a request was in flight.
func TestRecordsReadAgainAfterARevokeAreDeliveredAndRevokedOnesReleased(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	release1, release2 := make(chan struct{}), make(chan struct{})
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		switch n {
		case 1:
			<-release1
		case 2:
			<-release2
		default:
			return true
		}
		http.Error(w, "down", http.StatusBadGateway)
		return false
	}
	cfg := s.config()
	cfg.BatchEvents = 2
	f := bareForwarder(t, s, cfg)
	f.ws.Apply(trackingplan.Key("ws_1", trackingplan.KindForwarding), record(t, "ws_1", trackingplan.KindForwarding,
		`{"enabled": true, "target": {"url": "`+sk.srv.URL+`", "write_key": "key-ws_1"}}`))
	f.ws.Apply(trackingplan.Key("ws_1", trackingplan.KindFilters), record(t, "ws_1", trackingplan.KindFilters,
		`{"filters": [{"name": "no deletes", "enabled": true, "if": "event == 'Source Deleted'", "action": "drop"}]}`))
	evs := []event.Event{
		mkEvent("ws_1", 0, "Source Created", ""),
		mkEvent("ws_1", 1, "Source Deleted", ""), // filtered
		mkEvent("ws_1", 2, "Source Created", ""),
		mkEvent("ws_1", 3, "Source Created", ""),
	}
	requests := func() int {
		sk.mu.Lock()
		defer sk.mu.Unlock()
		return sk.requests["key-ws_1"]
	}
	ctx := context.Background()
	f.add(ctx, s.record(t, evs[0], 0))
	eventually(t, func() bool { return requests() == 1 }, "first attempt in flight")
	for i := 1; i < len(evs); i++ {
		f.add(ctx, s.record(t, evs[i], int64(i)))
	}
	close(release1)
	eventually(t, func() bool { return requests() == 2 }, "second attempt in flight, its head holding the filtered event")
	// The partition moves away while the request is in flight.
	f.forget(map[string][]int32{s.events: {0}})
	close(release2)
	eventually(t, func() bool { return len(f.slots) == 0 }, "revoked records release their slots (%d held)", len(f.slots))
	require.Zero(t, sk.count("key-ws_1"))

	// The partition comes back to this instance, which reads it again from
	// the committed offset (nothing was committed).
	for i, ev := range evs {
		f.add(ctx, s.record(t, ev, int64(i)))
	}
	eventually(t, func() bool { return len(sk.ids("key-ws_1")) == 3 && len(f.slots) == 0 }, "records read again are delivered")
	require.Equal(t, []string{"ws_1-evt-00000", "ws_1-evt-00002", "ws_1-evt-00003"}, sk.ids("key-ws_1"))
}
