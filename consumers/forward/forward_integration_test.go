package forward

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
)

// One partition shared by every workspace: a failing, rate-limited,
// timing-out and a stalled target must not hold up the others, lose
// nothing, keep each workspace's order, and the committed offset must stay
// below the stalled workspace's first undelivered event.
func TestFailingAndSlowTargetsLoseNothingAndDoNotStallOthers(t *testing.T) {
	stacktest.Require(t)
	s := newStack(t, true, 1)
	sk := newSink(t)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		switch {
		case key == "key-ws_500" && n <= 3:
			http.Error(w, "boom", http.StatusInternalServerError)
			return false
		case key == "key-ws_429" && n == 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return false
		case key == "key-ws_timeout" && n <= 2:
			<-r.Context().Done() // the forwarder's request times out
			return false
		case key == "key-ws_slow":
			select {
			case <-release:
			case <-r.Context().Done():
				return false
			}
		}
		return true
	}
	names := []string{"ws_fast1", "ws_500", "ws_slow", "ws_429", "ws_fast2", "ws_timeout", "ws_fast3"}
	for _, ws := range names {
		s.enable(t, ws, sk.srv.URL, false)
	}
	cfg := s.config()
	_, _ = s.run(t, cfg, Deps{})

	const per = 100
	var evs []event.Event
	firstSlow := -1
	for i := range per {
		for _, ws := range names {
			if ws == "ws_slow" && firstSlow < 0 {
				firstSlow = len(evs)
			}
			evs = append(evs, mkEvent(ws, i, "Source Created", fmt.Sprintf(`{"i": %d}`, i)))
		}
	}
	s.produce(t, evs...)

	for _, ws := range names {
		if ws == "ws_slow" {
			continue
		}
		key := "key-" + ws
		eventually(t, func() bool { return len(sk.ids(key)) == per }, "%s delivered while ws_slow is stalled", ws)
		require.Equal(t, expectIDs(ws, 0, per), sk.ids(key), "%s in order, nothing lost", ws)
	}
	require.Zero(t, sk.count("key-ws_slow"), "the stalled target has delivered nothing yet")
	// Everything before the stalled workspace's first event is delivered, so
	// the commit reaches it, and stays there although later events of the
	// other workspaces are delivered too.
	eventually(t, func() bool { return s.committed(t)[0] == int64(firstSlow) }, "committed up to the stalled workspace's first event")
	require.Zero(t, sk.count("key-ws_slow"))
	require.Equal(t, int64(firstSlow), s.committed(t)[0], "never committed past the stalled workspace's first event")
	sk.mu.Lock()
	require.GreaterOrEqual(t, sk.requests["key-ws_500"], 4, "5xx retried")
	require.GreaterOrEqual(t, sk.requests["key-ws_429"], 2, "429 retried")
	require.GreaterOrEqual(t, sk.requests["key-ws_timeout"], 3, "timeouts retried")
	sk.mu.Unlock()

	close(release)
	eventually(t, func() bool { return len(sk.ids("key-ws_slow")) == per }, "stalled workspace catches up")
	require.Equal(t, expectIDs("ws_slow", 0, per), sk.ids("key-ws_slow"))
	eventually(t, func() bool { return s.committed(t)[0] == int64(len(evs)) }, "committed to the end once all delivered")
}

// A new instance of the same group resumes where the previous one stopped,
// including events the previous one had read but could not deliver before
// it shut down: every event is delivered at least once and each
// workspace's first deliveries stay in order.
func TestRestartResumesWithoutLoss(t *testing.T) {
	stacktest.Require(t)
	s := newStack(t, true, 3)
	sk := newSink(t)
	var stalled atomic.Bool
	stalled.Store(true)
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if key == "key-ws_a" && stalled.Load() {
			<-r.Context().Done()
			return false
		}
		return true
	}
	names := []string{"ws_a", "ws_b", "ws_c", "ws_d", "ws_e", "ws_f"}
	for _, ws := range names {
		s.enable(t, ws, sk.srv.URL, false)
	}
	batch := func(from, to int) []event.Event {
		var evs []event.Event
		for i := from; i < to; i++ {
			for _, ws := range names {
				evs = append(evs, mkEvent(ws, i, "Source Created", ""))
			}
		}
		return evs
	}
	total := func() int {
		n := 0
		for _, ws := range names {
			n += len(sk.ids("key-" + ws))
		}
		return n
	}
	cfg := s.config()
	cfg.ShutdownTimeout = 50 * time.Millisecond
	_, stopA := s.run(t, cfg, Deps{})
	s.produce(t, batch(0, 100)...)
	eventually(t, func() bool { return total() == 100*(len(names)-1) }, "first instance delivered all but the stalled workspace")
	stopA()
	require.Zero(t, sk.count("key-ws_a"), "the first instance stopped with ws_a undelivered")

	stalled.Store(false)
	_, _ = s.run(t, s.config(), Deps{})
	s.produce(t, batch(100, 200)...)
	eventually(t, func() bool { return total() == 200*len(names) }, "second instance delivered the rest")
	for _, ws := range names {
		require.Equal(t, expectIDs(ws, 0, 200), sk.ids("key-"+ws), ws)
	}
}

// Ids the writer registered in ClickHouse 60 days ago are known to a fresh
// forwarder (a new group, nothing remembered): resends of them with new
// timestamps are neither forwarded nor alerted, the registered versions
// and new events are.
func TestRegisteredIDsAreNotForwardedAgainByAFreshForwarder(t *testing.T) {
	stacktest.Require(t)
	conn, ch := stacktest.ClickHouse(t, 90)
	s := newStack(t, true, 1)
	reg := idwindow.NewRegistry(conn, ch.Database)
	checkRegisteredResends(t, s, reg, func(ids []idwindow.StoredID) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, reg.Register(ctx, ids))
	})
}
