package forward

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/schemas/event"
)

func TestResentDecidesByFirstVersionAndRecentDeliveries(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f := &Forwarder{recent: newRecentIDs(10), firsts: idwindow.New(time.Hour, 10), now: func() time.Time { return t0 }}
	f.firsts.Add(t0, []idwindow.StoredID{{WorkspaceID: "ws", ID: "a", TimestampNs: 1, StoredAt: t0}}) // registered
	f.recent.add(TargetSource, "ws", "b")
	f.remember("ws", &item{id: "c", ts: 3})          // finished here
	f.remember("ws", &item{id: "a", ts: 9}, &item{}) // a resend finished later does not replace the first version
	for _, c := range []struct {
		kind, ws, id string
		ts           int64
		resent       bool
		why          string
	}{
		{TargetSource, "ws", "a", 1, false, "registered with the same timestamp: the first version or a replay of it"},
		{TargetSource, "ws", "a", 2, true, "registered with another timestamp: a resend"},
		{TargetAlert, "ws", "a", 2, true, "alerts decide alike"},
		{TargetSource, "ws", "a", 9, true, "the first version stays"},
		{TargetSource, "ws2", "a", 2, false, "the same id in another workspace is another event"},
		{TargetSource, "ws", "b", 5, true, "delivered to the source lately, whatever the timestamp"},
		{TargetAlert, "ws", "b", 5, false, "lately delivered is per target kind"},
		{TargetSource, "ws", "c", 3, false, "finished here with the same timestamp"},
		{TargetAlert, "ws", "c", 4, true, "finished here with another timestamp"},
		{TargetSource, "ws", "new", 1, false, "unknown ids are delivered"},
	} {
		require.Equal(t, c.resent, f.resent(c.kind, c.ws, c.id, c.ts), c.why)
	}
}

// fakeRegistry serves registered ids as the registry table does, or fails.
type fakeRegistry struct {
	mu    sync.Mutex
	ids   []idwindow.StoredID
	err   error
	calls int
}

func (r *fakeRegistry) Register(_ context.Context, ids []idwindow.StoredID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, ids...)
	return nil
}

func (r *fakeRegistry) Recent(_ context.Context, topic string, p int32, since time.Time, limit int) ([]idwindow.StoredID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return nil, r.err
	}
	var out []idwindow.StoredID
	for _, s := range r.ids {
		if s.Topic == topic && s.Partition == p && !s.StoredAt.Before(since) {
			out = append(out, s)
		}
	}
	return out[max(len(out)-limit, 0):], nil
}

func (r *fakeRegistry) Moved(_ context.Context, topic string, partitions int, assigned []int32, since time.Time, limit int) ([]idwindow.StoredID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return nil, r.err
	}
	var out []idwindow.StoredID
	for _, s := range r.ids {
		if now := idwindow.PartitionOf(s.WorkspaceID, partitions); s.Topic == topic && s.Partition != now &&
			slices.Contains(assigned, now) && !s.StoredAt.Before(since) {
			out = append(out, s)
		}
	}
	return out[max(len(out)-limit, 0):], nil
}

func (r *fakeRegistry) MovedFrom(_ context.Context, topic string, part int32, wss []string, since time.Time, limit int) ([]idwindow.StoredID, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return nil, r.err
	}
	var out []idwindow.StoredID
	for _, s := range r.ids {
		if s.Topic == topic && s.Partition == part && slices.Contains(wss, s.WorkspaceID) && !s.StoredAt.Before(since) {
			out = append(out, s)
		}
	}
	return out[max(len(out)-limit, 0):], nil
}

// PartitionCounts knows only the current count: nothing is handed over.
func (r *fakeRegistry) PartitionCounts(_ context.Context, _ string, partitions int, now time.Time) ([]idwindow.Count, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	return []idwindow.Count{{Partitions: partitions, NoticedAt: now}}, nil
}

func TestRegisteredIDsDecideWhatIsForwarded(t *testing.T) {
	s := newStack(t, false, 1)
	reg := &fakeRegistry{}
	checkRegisteredResends(t, s, reg, func(ids []idwindow.StoredID) { require.NoError(t, reg.Register(context.Background(), ids)) })
}

// checkRegisteredResends registers ids of ws_1 as stored 60 days ago (and
// one 92 days ago, past the window), then runs a fresh forwarder over (a)
// resends of them with new timestamps, (b) the registered versions
// themselves and (c) new events, and checks at the sink that (a) are
// neither forwarded nor alerted, and (b) and (c) are, once each.
func checkRegisteredResends(t *testing.T, s *stack, reg Registry, register func([]idwindow.StoredID)) {
	t.Helper()
	sk := newSink(t)
	s.enable(t, "ws_1", sk.srv.URL, false)
	s.alertOn(t, "ws_1", sk, "Warehouses Disabled")

	const n = 10
	now := time.Now().UTC()
	stored := now.Add(-60 * 24 * time.Hour)
	var firsts, resends []event.Event
	var ids []idwindow.StoredID
	for i := range n + 1 {
		ev := mkEvent("ws_1", i, "Warehouses Disabled", "")
		at := stored
		if i == n {
			at = now.Add(-92 * 24 * time.Hour) // past the retention window and a day
		}
		ev.Timestamp = at.Add(time.Duration(i) * time.Millisecond)
		ids = append(ids, idwindow.StoredID{Topic: s.events, Partition: 0, StoredAt: at, WorkspaceID: ev.WorkspaceID, ID: ev.ID, TimestampNs: ev.Timestamp.UnixNano()})
		firsts = append(firsts, ev)
		re := ev
		re.Timestamp = ev.Timestamp.Add(time.Minute) // rebuilt before a retry
		resends = append(resends, re)
	}
	register(ids)

	promReg := prometheus.NewRegistry()
	_, _ = s.run(t, s.config(), Deps{Registry: reg, Reg: promReg})
	var news []event.Event
	for i := range 5 {
		news = append(news, mkEvent("ws_1", 100+i, "Warehouses Disabled", ""))
	}
	s.produce(t, resends...)    // (a), and the resend of the id past the window
	s.produce(t, firsts[:n]...) // (b)
	s.produce(t, news...)       // (c)
	total := int64(len(resends) + n + len(news))
	eventually(t, func() bool { return s.committed(t)[0] == total }, "every record finished")

	want := []string{fmt.Sprintf("ws_1-evt-%05d", n)} // past the window: its resend is the only copy
	want = append(want, expectIDs("ws_1", 0, n)...)
	want = append(want, expectIDs("ws_1", 100, 105)...)
	require.Equal(t, want, sk.ids("key-ws_1"), "registered ids forwarded once each, new ones too")
	calls := sk.calls("key-ws_1")
	require.Len(t, calls, len(want), "nothing forwarded twice")
	first := map[string]string{}
	for _, ev := range firsts[:n] {
		first[ev.ID] = ev.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	for _, c := range calls {
		if ts, ok := first[c.MessageID]; ok {
			require.Equal(t, ts, c.Timestamp, "%s: the registered (first) version is forwarded, not the resend", c.MessageID)
		}
	}
	sk.mu.Lock()
	alerts := append([]string(nil), sk.alerts...)
	sk.mu.Unlock()
	require.Len(t, alerts, len(want), "alerted once per id, never for a resend")
	for _, ev := range resends[:n] {
		require.False(t, contains(alerts, "When: "+ev.Timestamp.UTC().Format("2006-01-02 15:04:05 UTC")), "no alert for the resend of %s", ev.ID)
	}
	require.Equal(t, float64(2*n), counter(t, promReg, "audittrail_forwarder_events_dropped_total", "reason", dropDuplicate),
		"each resend dropped once for the source and once for the alert")
}

func TestForwardingGoesOnWhenTheRegistryFails(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	s.enable(t, "ws_1", sk.srv.URL, false)
	reg := &fakeRegistry{err: errors.New("dial tcp 127.0.0.1:9000: connection refused")}
	cfg := s.config()
	cfg.RegistryTimeout = 200 * time.Millisecond
	promReg := prometheus.NewRegistry()
	_, _ = s.run(t, cfg, Deps{Registry: reg, Reg: promReg})
	s.produce(t, mkEvent("ws_1", 0, "Source Created", ""), mkEvent("ws_1", 1, "Source Created", ""))
	eventually(t, func() bool { return len(sk.ids("key-ws_1")) == 2 }, "delivered without the registry")
	require.Equal(t, float64(3), counter(t, promReg, "audittrail_forwarder_registry_load_errors_total"),
		"the partition whose ids could not be loaded is counted, the moved workspaces' ids, and the partition counts")
	reg.mu.Lock()
	require.Greater(t, reg.calls, 1, "loading is retried until the timeout")
	reg.mu.Unlock()
}

// counter returns the value of a counter with the given label name/value
// pairs (0 when it has none yet).
func counter(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
