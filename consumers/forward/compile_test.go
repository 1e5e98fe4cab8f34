package forward

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// A tracking plan whose compilation is slow (held here until released)
// delays no other workspace: while workspace A's new plan compiles,
// workspace B's events are delivered and B's settings changes apply, A's
// events are delivered under A's previous plan, and the new plan applies
// once compiled. A workspace whose first plan compiles at start waits
// alone; its events are never forwarded without it.
func TestSlowCompileOfOneWorkspaceDelaysNoOther(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	for _, ws := range []string{"ws_a", "ws_b", "ws_c"} {
		s.enable(t, ws, sk.srv.URL, false)
	}
	allowAll := json.RawMessage(`{"events": {"Source Created": {}, "Source Deleted": {}}, "unplanned_events": "block"}`)
	onlyCreated := json.RawMessage(`{"events": {"Source Created": {}}, "unplanned_events": "block"}`)
	s.put(t, "ws_a", trackingplan.KindPlan, allowAll)
	s.put(t, "ws_c", trackingplan.KindPlan, onlyCreated)

	entered := map[string]chan struct{}{"ws_a": make(chan struct{}), "ws_c": make(chan struct{})}
	release := map[string]chan struct{}{"ws_a": make(chan struct{}), "ws_c": make(chan struct{})}
	var once sync.Map
	var aCompiles atomic.Int32
	f := s.build(t, s.config(), Deps{})
	f.ws.compile = func(id, kind string, raw json.RawMessage) (any, error) {
		// Held: ws_c's first plan and ws_a's second one.
		if id == "ws_c" || (id == "ws_a" && aCompiles.Add(1) == 2) {
			if _, done := once.LoadOrStore(id, true); !done {
				close(entered[id])
				<-release[id]
			}
		}
		return compileSettings(id, kind, raw)
	}
	// Released before the forwarder stops (cleanups run last first).
	s.start(t, f)
	t.Cleanup(func() {
		for _, ch := range release {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
	})
	<-entered["ws_c"]

	s.produce(t, mkEvent("ws_c", 0, "Source Created", ""), mkEvent("ws_c", 1, "Source Deleted", ""),
		mkEvent("ws_b", 0, "Source Created", ""), mkEvent("ws_a", 0, "Source Deleted", ""))
	eventually(t, func() bool { return len(sk.ids("key-ws_b")) == 1 && len(sk.ids("key-ws_a")) == 1 },
		"ws_a and ws_b delivered while ws_c's plan compiles")
	require.Zero(t, sk.requestsOf("key-ws_c"), "ws_c waits for its plan")

	// ws_a's new plan is held too; ws_b's new filters apply meanwhile.
	s.put(t, "ws_a", trackingplan.KindPlan, onlyCreated)
	<-entered["ws_a"]
	s.put(t, "ws_b", trackingplan.KindFilters, json.RawMessage(`{"filters": [
		{"name": "no deletes", "enabled": true, "if": "event == 'Source Deleted'", "action": "drop"}]}`))
	eventually(t, func() bool { ws := f.Workspaces().Get("ws_b"); return ws != nil && ws.Filters != nil },
		"ws_b's filters apply while ws_a's plan compiles")
	s.produce(t, mkEvent("ws_b", 1, "Source Deleted", ""), mkEvent("ws_b", 2, "Source Created", ""),
		mkEvent("ws_a", 1, "Source Deleted", ""))
	eventually(t, func() bool { return len(sk.ids("key-ws_b")) == 2 && len(sk.ids("key-ws_a")) == 2 },
		"ws_b delivered under its new filters, ws_a under its previous plan")
	require.Equal(t, []string{"ws_b-evt-00000", "ws_b-evt-00002"}, sk.ids("key-ws_b"))
	require.Zero(t, sk.requestsOf("key-ws_c"), "ws_c still waits for its plan")

	close(release["ws_a"])
	close(release["ws_c"])
	eventually(t, func() bool { return len(sk.ids("key-ws_c")) == 1 }, "ws_c delivered under its plan")
	require.Equal(t, []string{"ws_c-evt-00000"}, sk.ids("key-ws_c"), "never forwarded without its plan")
	eventually(t, func() bool { return f.Workspaces().Get("ws_a").Plan.Check("Source Deleted", nil).Drop },
		"ws_a's new plan applies once compiled")
	s.produce(t, mkEvent("ws_a", 2, "Source Deleted", ""), mkEvent("ws_a", 3, "Source Created", ""))
	eventually(t, func() bool { return s.committed(t)[0] == 9 }, "all processed")
	require.Equal(t, []string{"ws_a-evt-00000", "ws_a-evt-00001", "ws_a-evt-00003"}, sk.ids("key-ws_a"))
}
