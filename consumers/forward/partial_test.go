package forward

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// refuseBad makes the sink hold its first request until release is closed
// and answer 400 to any request holding a call with the property "bad".
func refuseBad(sk *sink, release chan struct{}) {
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if n == 1 {
			<-release
		}
		return true
	}
	sk.reject = func(calls []TrackCall) int {
		for _, c := range calls {
			if _, bad := c.Properties["bad"]; bad {
				return http.StatusBadRequest
			}
		}
		return 0
	}
}

// A batch the target rejects with a 400 is split until the refused events
// are alone: only those are dead-lettered, the others are delivered once
// and in order, everything is committed, and the split stays within its
// request budget.
func TestRejectedBatchIsSplitToIsolateTheRefusedEvents(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		bad      []int
		budget   int
		maxReqs  int // requests for the batch after the first, held one
		isolated bool
	}{
		{name: "one refused in the middle", n: 16, bad: []int{9}, budget: 64, maxReqs: 1 + 2*4, isolated: true},
		{name: "first and last refused", n: 16, bad: []int{0, 15}, budget: 64, maxReqs: 1 + 2*2*4, isolated: true},
		{name: "all refused", n: 8, bad: []int{0, 1, 2, 3, 4, 5, 6, 7}, budget: 64, maxReqs: 2*8 - 1, isolated: true},
		{name: "none refused", n: 8, budget: 64, maxReqs: 1, isolated: true},
		{name: "budget used: refused parts dead-lettered whole", n: 8, bad: []int{0, 1, 2, 3, 4, 5, 6, 7}, budget: 2, maxReqs: 1 + 2 + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, false, 1)
			sk := newSink(t)
			release := make(chan struct{})
			refuseBad(sk, release)
			s.enable(t, "ws_1", sk.srv.URL, false)
			cfg := s.config()
			cfg.MaxSplitRequests = tt.budget
			f, _ := s.run(t, cfg, Deps{})

			bad := map[int]bool{}
			for _, i := range tt.bad {
				bad[i] = true
			}
			evs := []event.Event{mkEvent("ws_1", 999, "Source Created", "")} // the held request
			var wantOK, wantDead []string
			for i := range tt.n {
				props := `{"i": 1}`
				if bad[i] {
					props = `{"bad": true}`
				}
				e := mkEvent("ws_1", i, "Source Created", props)
				evs = append(evs, e)
				if bad[i] {
					wantDead = append(wantDead, e.ID)
				} else {
					wantOK = append(wantOK, e.ID)
				}
			}
			s.produce(t, evs[0])
			eventually(t, func() bool { return sk.requestsOf("key-ws_1") == 1 }, "the first request is held")
			s.produce(t, evs[1:]...)
			eventually(t, func() bool { return len(f.slots) == len(evs) }, "all read while the first request is held")
			close(release)

			eventually(t, func() bool { return s.committed(t)[0] == int64(len(evs)) }, "all delivered or dead-lettered")
			require.Equal(t, append([]string{evs[0].ID}, wantOK...), sk.ids("key-ws_1"), "the accepted events, in order")
			require.Equal(t, 1+len(wantOK), sk.count("key-ws_1"), "none delivered twice")
			dl := s.dlqRecords(t, len(wantDead))
			var dead []string
			for _, r := range dl {
				ev, err := event.Decode(r.Value)
				require.NoError(t, err)
				dead = append(dead, ev.ID)
				reason := header(r, topics.HeaderDLQReason)
				require.Contains(t, reason, "rejected: HTTP 400")
				if tt.isolated {
					require.NotContains(t, reason, "not isolated")
				}
			}
			sort.Strings(dead)
			require.Equal(t, wantDead, dead, "only the refused events are dead-lettered")
			require.LessOrEqual(t, sk.requestsOf("key-ws_1")-1, tt.maxReqs, "split within its bound")
		})
	}
}

// A target that refuses the write key (401, 403) or has no such source
// (404) is never split and nothing is dead-lettered: the workspace's
// delivery pauses with an alert, the other workspaces flow, nothing of the
// paused workspace is committed, and a settings change resumes it at once.
func TestRefusedTargetPausesTheWorkspaceAndAlerts(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := newStack(t, false, 1)
			sk := newSink(t)
			sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
				if key == "key-ws_bad" {
					http.Error(w, "secret internal detail", status)
					return false
				}
				return true
			}
			s.enable(t, "ws_bad", sk.srv.URL, false)
			s.alertOn(t, "ws_bad", sk, "Warehouses Disabled")
			s.enable(t, "ws_ok", sk.srv.URL, false)
			cfg := s.config()
			hourBackoffs(&cfg) // only the settings change resumes it
			reg := prometheus.NewRegistry()
			f, _ := s.run(t, cfg, Deps{Reg: reg})

			var evs []event.Event
			for i := range 5 {
				evs = append(evs, mkEvent("ws_bad", i, "Source Created", `{"bad": true}`), mkEvent("ws_ok", i, "Source Created", ""))
			}
			s.produce(t, evs...)
			eventually(t, func() bool { return len(sk.ids("key-ws_ok")) == 5 }, "the other workspace flows")
			eventually(t, func() bool { return len(sk.alertTexts()) == 1 }, "the pause is alerted")
			alert := sk.alertTexts()[0]
			require.Contains(t, alert, "Audit forwarding paused* in workspace ws_bad")
			require.Contains(t, alert, fmt.Sprintf("(HTTP %d)", status))
			require.NotContains(t, alert, "secret internal detail", "the target's answer is not echoed")
			require.Equal(t, 1.0, gauge(t, f.m.paused))
			require.Equal(t, 1, sk.requestsOf("key-ws_bad"), "not split, not retried before the backoff")
			require.Zero(t, s.committed(t)[0], "the paused workspace's first event is not committed")
			require.Empty(t, s.dlqRecords(t, 0), "nothing dead-lettered")

			// The owner fixes the write key: delivery resumes at once.
			s.put(t, "ws_bad", trackingplan.KindForwarding, trackingplan.Forwarding{Enabled: true,
				Target: trackingplan.Target{URL: sk.srv.URL, WriteKey: "key-ws_fixed"}})
			eventually(t, func() bool { return len(sk.ids("key-ws_fixed")) == 5 }, "resumed after the settings change")
			require.Equal(t, expectIDs("ws_bad", 0, 5), sk.ids("key-ws_fixed"))
			eventually(t, func() bool { return s.committed(t)[0] == int64(len(evs)) }, "all committed")
			require.Zero(t, gauge(t, f.m.paused))
			require.Len(t, sk.alertTexts(), 1, "one alert per pause")
		})
	}
}

// A settings change that arrives while a request the target refuses is in
// flight is not lost: the workspace pauses, and the retry with the new
// settings starts at once, not after the backoff.
func TestSettingsChangeDuringARefusedRequestResumesAtOnce(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	answer := make(chan struct{})
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if key == "key-ws_bad" {
			<-answer
			http.Error(w, "bad key", http.StatusUnauthorized)
			return false
		}
		return true
	}
	s.enable(t, "ws_bad", sk.srv.URL, false)
	cfg := s.config()
	hourBackoffs(&cfg) // only the settings change resumes it
	f := s.build(t, cfg, Deps{})
	changed := make(chan struct{}, 1)
	onChange := f.ws.onChange
	f.ws.onChange = func(id string) {
		onChange(id)
		if ws := f.ws.Get(id); id == "ws_bad" && ws.Forwarding.Target.WriteKey == "key-ws_fixed" {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
	s.start(t, f)

	s.produce(t, mkEvent("ws_bad", 0, "Source Created", ""), mkEvent("ws_bad", 1, "Source Created", ""))
	eventually(t, func() bool { return sk.requestsOf("key-ws_bad") == 1 }, "the first request in flight")
	s.put(t, "ws_bad", trackingplan.KindForwarding, trackingplan.Forwarding{Enabled: true,
		Target: trackingplan.Target{URL: sk.srv.URL, WriteKey: "key-ws_fixed"}})
	select {
	case <-changed:
	case <-time.After(60 * time.Second):
		t.Fatal("the settings change was not applied")
	}
	close(answer) // refused with the old key, after the change

	eventually(t, func() bool { return len(sk.ids("key-ws_fixed")) == 2 }, "retried at once with the new settings")
	require.Equal(t, expectIDs("ws_bad", 0, 2), sk.ids("key-ws_fixed"))
	eventually(t, func() bool { return s.committed(t)[0] == 2 }, "committed")
}

// hourBackoffs makes every retry wait an hour, so that only a settings
// change resumes a paused target, and gives requests a minute: the sink
// answers at once, but on a loaded machine a request can outlast the
// stack's 300 ms, and its retry, of any workspace, would then wait the hour
// and fail the test on a timeout it does not test.
func hourBackoffs(cfg *Config) {
	cfg.RetryMin, cfg.RetryMax, cfg.RetryAfterMax = time.Hour, time.Hour, time.Hour
	cfg.RequestTimeout = time.Minute
}

func gauge(t *testing.T, g prometheus.Gauge) float64 {
	var m dto.Metric
	require.NoError(t, g.Write(&m))
	return m.GetGauge().GetValue()
}

// A paused workspace holds only its own partition: once its queue is full,
// reading of its partition pauses, the in-flight slots stay free for the
// other partitions, whose workspaces are all delivered; when the pause
// ends the partition is read again to the end.
func TestPausedWorkspaceHoldsOnlyItsPartition(t *testing.T) {
	s := newStack(t, false, 2)
	sk := newSink(t)
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if key == "key-ws_bad" {
			http.Error(w, "bad key", http.StatusUnauthorized)
			return false
		}
		return true
	}
	s.enable(t, "ws_bad", sk.srv.URL, false)
	s.enable(t, "ws_ok", sk.srv.URL, false)
	cfg := s.config()
	cfg.MaxInFlight = 80 // a queue of 10 pauses its partition
	hourBackoffs(&cfg)
	reg := prometheus.NewRegistry()
	f, _ := s.run(t, cfg, Deps{Reg: reg})

	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, s.opts...), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	defer prod.Close()
	send := func(ws string, part int32, from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			e := mkEvent(ws, i, "Source Created", "")
			v, err := event.Marshal(&e)
			require.NoError(t, err)
			recs = append(recs, &kgo.Record{Topic: s.events, Partition: part, Key: []byte(ws), Value: v,
				Headers: []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte(e.Event)}}})
		}
		require.NoError(t, prod.ProduceSync(context.Background(), recs...).FirstErr())
	}
	send("ws_bad", 0, 0, 200)
	eventually(t, func() bool { return sk.requestsOf("key-ws_bad") == 1 && gauge(t, f.m.heldPartitions) == 1 }, "paused, its partition held")
	send("ws_ok", 1, 0, 200)
	eventually(t, func() bool { return len(sk.ids("key-ws_ok")) == 200 }, "the other partition flows")
	require.LessOrEqual(t, len(f.slots), 20, "the held partition keeps at most its queue and one poll in flight")
	eventually(t, func() bool { return s.committed(t)[1] == 200 }, "the other partition committed")
	require.Zero(t, s.committed(t)[0], "nothing of the held partition committed")

	s.put(t, "ws_bad", trackingplan.KindForwarding, trackingplan.Forwarding{Enabled: true,
		Target: trackingplan.Target{URL: sk.srv.URL, WriteKey: "key-ws_fixed"}})
	eventually(t, func() bool { return len(sk.ids("key-ws_fixed")) == 200 }, "resumed and read to the end")
	require.Equal(t, expectIDs("ws_bad", 0, 200), sk.ids("key-ws_fixed"))
	eventually(t, func() bool { return s.committed(t)[0] == 200 }, "committed")
	require.Zero(t, gauge(t, f.m.heldPartitions))
}
