package forward

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
)

// One partition shared by every workspace: a failing, rate-limited,
// timing-out and a stalled target must not hold up the others, lose
// nothing, keep each workspace's order, and the committed offset must stay
// below the stalled workspace's first undelivered event.
func TestFailingAndSlowTargetsLoseNothingAndDoNotStallOthers(t *testing.T) {
	proctest.Require(t)
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
	proctest.Require(t)
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
	proctest.Require(t)
	conn, ch := stacktest.ClickHouse(t, 90)
	s := newStack(t, true, 1)
	reg := idwindow.NewRegistry(conn, ch.Database)
	checkRegisteredResends(t, s, reg, func(ids []idwindow.StoredID) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, reg.Register(ctx, ids))
	})
}

// Over the real broker, a listing shows only the dead letters the replay
// group has not replayed yet; -all shows every letter with its status. A
// 400 for a batch dead-letters only the refused event, and a 401 pauses
// the workspace without dead letters.
func TestListingShowsOutstandingDeadLettersOnly(t *testing.T) {
	proctest.Require(t)
	s := newStack(t, true, 2)
	t.Cleanup(func() {
		cl, err := kgo.NewClient(s.opts...)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _ = kadm.NewClient(cl).DeleteGroup(ctx, s.group+"-replay")
			cl.Close()
		}
	})
	sk := newSink(t)
	var refusing atomic.Bool
	refusing.Store(true)
	sk.reject = func(calls []TrackCall) int {
		for _, c := range calls {
			if _, bad := c.Properties["bad"]; bad && refusing.Load() {
				return http.StatusBadRequest
			}
		}
		return 0
	}
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if key == "key-ws_401" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return false
		}
		return true
	}
	for _, ws := range []string{"ws_1", "ws_2", "ws_401"} {
		s.enable(t, ws, sk.srv.URL, false)
	}
	_, stop := s.run(t, s.config(), Deps{})
	var evs []event.Event
	for i := range 6 {
		props := ""
		if i == 2 || i == 4 {
			props = `{"bad": true}`
		}
		evs = append(evs, mkEvent("ws_1", i, "Source Created", props), mkEvent("ws_2", i, "Source Created", props))
	}
	evs = append(evs, mkEvent("ws_401", 0, "Source Created", ""))
	s.produce(t, evs...)
	dead := s.dlqRecords(t, 4)
	require.Len(t, dead, 4, "only the refused events are dead-lettered, none of ws_401")
	eventually(t, func() bool { return len(sk.ids("key-ws_1")) == 4 && len(sk.ids("key-ws_2")) == 4 }, "the rest delivered")
	stop()

	list := func(o ReplayOptions) []string {
		var out strings.Builder
		o.DryRun, o.Out = true, &out
		st, err := Replay(context.Background(), s.config(), Deps{KafkaOpts: s.opts}, o)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if out.Len() == 0 {
			lines = nil
		}
		require.Equal(t, len(lines), st.Listed)
		sort.Strings(lines)
		return lines
	}
	require.Len(t, list(ReplayOptions{}), 4, "nothing replayed yet: all outstanding")
	require.Len(t, list(ReplayOptions{Workspace: "ws_2"}), 2)

	refusing.Store(false)
	st, err := Replay(context.Background(), s.config(), Deps{KafkaOpts: s.opts}, ReplayOptions{Workspace: "ws_1"})
	require.NoError(t, err)
	require.Equal(t, ReplayStats{Delivered: 2, Requeued: 2}, st)

	// ws_1's letters are replayed and hidden; ws_2's were appended again
	// (kept for their workspace) and are outstanding once each.
	out := list(ReplayOptions{})
	require.Len(t, out, 2, "%q", out)
	for _, l := range out {
		require.True(t, strings.HasPrefix(l, "ws_2\t"), l)
	}
	all := list(ReplayOptions{All: true})
	require.Len(t, all, 6, "%q", all)
	status := map[string]int{}
	for _, l := range all {
		f := strings.Split(l, "\t")
		status[f[0]+" "+f[len(f)-1]]++
	}
	require.Equal(t, map[string]int{"ws_1 replayed": 2, "ws_2 replayed": 2, "ws_2 outstanding": 2}, status)
}
