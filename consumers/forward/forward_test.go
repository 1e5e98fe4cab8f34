package forward

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) Emit(_ context.Context, ev event.Event) error {
	if err := (event.Policy{}).Validate(&ev); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) all() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// committed returns the group's committed offset of each partition.
func (s *stack) committed(t *testing.T) map[int32]int64 {
	cl, err := kgo.NewClient(s.opts...)
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).FetchOffsets(ctx, s.group)
	if err != nil {
		return nil
	}
	out := map[int32]int64{}
	res.Each(func(o kadm.OffsetResponse) {
		if o.Topic == s.events && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

func TestDeliversEnabledWorkspacesOnlyAsTrackCalls(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	s.enable(t, "ws_on", sk.srv.URL, false)
	s.put(t, "ws_off", trackingplan.KindForwarding, trackingplan.Forwarding{Enabled: false,
		Target: trackingplan.Target{URL: sk.srv.URL, WriteKey: "key-ws_off"}})
	s.put(t, "ws_off", trackingplan.KindAlerts, trackingplan.Alerts{})
	_, _ = s.run(t, s.config(), Deps{})

	var evs []event.Event
	for i := range 40 {
		evs = append(evs, mkEvent("ws_off", i, "Source Created", ""), mkEvent("ws_none", i, "Source Created", ""))
	}
	for i := range 40 {
		evs = append(evs, mkEvent("ws_on", i, "Source Created", `{"kind": "http", "n": 12345678901234567}`))
	}
	s.produce(t, evs...)

	eventually(t, func() bool { return sk.count("key-ws_on") >= 40 }, "enabled workspace delivered")
	eventually(t, func() bool { return s.committed(t)[0] == int64(len(evs)) }, "everything read is committed")
	require.Zero(t, sk.requests["key-ws_off"], "disabled: nothing sent")
	require.Zero(t, sk.requests["key-ws_none"], "no settings: nothing sent")
	require.Equal(t, expectIDs("ws_on", 0, 40), sk.ids("key-ws_on"), "order kept")

	c := sk.calls("key-ws_on")[0]
	require.Equal(t, "track", c.Type)
	require.Equal(t, "Source Created", c.Event)
	require.Equal(t, "usr_1", c.UserID)
	require.Equal(t, "ws_on-evt-00000", c.MessageID)
	require.Equal(t, "2026-11-25T10:00:00Z", c.Timestamp)
	require.Equal(t, "ws_on", c.Properties["workspace_id"])
	require.Equal(t, "Sources", c.Properties["category"])
	require.Equal(t, "alice@example.com", c.Properties["actor_email"])
	require.Equal(t, "src_1", c.Properties["resource_id"])
	require.Equal(t, "http", c.Properties["kind"])
	require.Equal(t, json.Number("12345678901234567"), c.Properties["n"], "numbers forwarded exactly")
	require.Equal(t, map[string]any{"enabled": map[string]any{"old": true, "new": false}}, c.Properties["changes"])
	require.Equal(t, "203.0.113.9", c.Context["ip"])
}

func TestTrackingPlanAndFiltersApplyExactly(t *testing.T) {
	s := newStack(t, false, 2)
	sk := newSink(t)
	rec := &recorder{}
	s.enable(t, "ws_1", sk.srv.URL, false)
	s.put(t, "ws_1", trackingplan.KindPlan, json.RawMessage(`{
		"events": {
			"Source Created": {"properties": {"type": "object", "properties": {"kind": {"type": "string"}, "secret": {}}, "required": ["kind"]}},
			"Source Deleted": {"properties": {"type": "object", "properties": {"kind": {"type": "string"}}}}
		},
		"unplanned_events": "block", "unplanned_properties": "omit", "on_violation": "block"}`))
	s.put(t, "ws_1", trackingplan.KindFilters, json.RawMessage(`{"filters": [
		{"name": "no tokens", "enabled": true, "if": "actor.type == 'access_token'", "action": "drop"},
		{"name": "strip secret", "enabled": true, "if": "has(properties.secret)", "action": "drop_properties", "properties": ["secret"]},
		{"name": "half of deletes", "enabled": true, "if": "event == 'Source Deleted'", "action": "sample", "percent": 50}
	]}`))
	_, _ = s.run(t, s.config(), Deps{Emitter: rec})

	var evs []event.Event
	var want []string
	for i := range 200 {
		var e event.Event
		switch i % 5 {
		case 0: // planned, valid, with an unplanned property and a secret: forwarded, stripped
			e = mkEvent("ws_1", i, "Source Created", `{"kind": "http", "secret": "x", "extra": 1}`)
			want = append(want, e.ID)
		case 1: // violates (kind missing): blocked
			e = mkEvent("ws_1", i, "Source Created", `{"extra": 1}`)
		case 2: // unplanned: blocked
			e = mkEvent("ws_1", i, "Warehouses Disabled", `{"kind": "x"}`)
		case 3: // by an access token: filtered
			e = mkEvent("ws_1", i, "Source Created", `{"kind": "http"}`)
			e.Actor = event.Actor{Type: "access_token", ID: "tok_1"}
		case 4: // sampled by id
			e = mkEvent("ws_1", i, "Source Deleted", `{"kind": "http"}`)
			if trackingplan.Sampled(e.ID, 5000) {
				want = append(want, e.ID)
			}
		}
		evs = append(evs, e)
	}
	s.produce(t, evs...)
	eventually(t, func() bool {
		c := s.committed(t)
		return c[0]+c[1] == int64(len(evs))
	}, "all events processed")
	require.Equal(t, want, sk.ids("key-ws_1"), "exactly the expected events, in order")
	for _, c := range sk.calls("key-ws_1") {
		require.NotContains(t, c.Properties, "secret", c.MessageID)
		require.NotContains(t, c.Properties, "extra", "unplanned property omitted: %s", c.MessageID)
		require.Equal(t, "http", c.Properties["kind"])
	}
	eventually(t, func() bool {
		n := 0
		for _, ev := range rec.all() {
			require.Equal(t, "Violations Detected", ev.Event)
			require.Equal(t, "ws_1", ev.WorkspaceID)
			var p struct {
				Violations int `json:"violations"`
			}
			require.NoError(t, json.Unmarshal(ev.Properties, &p))
			n += p.Violations
		}
		return n == 40
	}, "40 violations recorded in aggregated events")
	require.Less(t, len(rec.all()), 40, "aggregated, not one per event")
}

func TestHardFailuresOnlyAndAlerts(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	s.enable(t, "ws_1", sk.srv.URL, true)
	s.alertOn(t, "ws_1", sk, "Warehouses Disabled", "Audience Run Failed")
	_, _ = s.run(t, s.config(), Deps{})

	var evs []event.Event
	for a := 1; a <= 5; a++ {
		e := mkEvent("ws_1", a, "Audience Run Failed", `{"attempt": `+string(rune('0'+a))+`, "max_attempts": 5}`)
		evs = append(evs, e)
	}
	wh := mkEvent("ws_1", 10, "Warehouses Disabled", "")
	wh.Resource = event.Resource{Type: "warehouse", ID: "wh_1", Name: "Snowflake prod"}
	evs = append(evs, wh, mkEvent("ws_1", 11, "Source Created", ""))
	s.produce(t, evs...)

	eventually(t, func() bool { return s.committed(t)[0] == int64(len(evs)) }, "processed")
	require.Equal(t, []string{"ws_1-evt-00005", "ws_1-evt-00010", "ws_1-evt-00011"}, sk.ids("key-ws_1"),
		"only the final failure of the retried job is forwarded")
	sk.mu.Lock()
	alerts := append([]string(nil), sk.alerts...)
	sk.mu.Unlock()
	require.Len(t, alerts, 2, "final failure and the warehouse change alert: %q", alerts)
	require.Contains(t, alerts[1], "*Warehouses Disabled* in workspace ws_1")
	require.Contains(t, alerts[1], "By: Alice <alice@example.com> (user usr_1)")
	require.Contains(t, alerts[1], `Resource: warehouse "Snowflake prod" (wh_1)`)
	require.Contains(t, alerts[1], "When: 2026-11-25 10:00:00 UTC")
	require.Contains(t, alerts[1], "enabled: true → false")
}

func TestRejectedAndOversizedEventsAreDeadLettered(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if key == "key-ws_bad" {
			http.Error(w, "invalid event", http.StatusBadRequest)
			return false
		}
		return true
	}
	s.enable(t, "ws_bad", sk.srv.URL, false)
	s.enable(t, "ws_ok", sk.srv.URL, false)
	_, _ = s.run(t, s.config(), Deps{})
	big := mkEvent("ws_ok", 1, "Source Created", `{"blob": "`+string(make([]byte, 0))+stringOf('x', 33<<10)+`"}`)
	s.produce(t, mkEvent("ws_bad", 0, "Source Created", ""), mkEvent("ws_ok", 0, "Source Created", ""), big, mkEvent("ws_ok", 2, "Source Created", ""))

	dl := s.dlqRecords(t, 2)
	require.Len(t, dl, 2)
	reasons := map[string]string{}
	for _, r := range dl {
		ev, err := event.Decode(r.Value)
		require.NoError(t, err)
		reasons[ev.ID] = header(r, topics.HeaderDLQReason)
		require.Equal(t, TargetSource, header(r, topics.HeaderForwardTarget))
		require.Equal(t, s.events, header(r, topics.HeaderDLQTopic))
	}
	require.Contains(t, reasons["ws_bad-evt-00000"], "rejected: HTTP 400")
	require.Contains(t, reasons["ws_ok-evt-00001"], "too_large")
	eventually(t, func() bool { return s.committed(t)[0] == 4 }, "dead letters count as done")
	require.Equal(t, []string{"ws_ok-evt-00000", "ws_ok-evt-00002"}, sk.ids("key-ws_ok"))
	require.Equal(t, 1, sk.requestsOf("key-ws_bad"), "a 400 for one event is not retried")
}

// Events queued behind a busy request go out in batches that stay within
// the tracking API's limits (500,000 bytes per request): nothing is
// rejected, nothing lost, order kept, and fewer requests than events.
func TestBatchesStayUnderTheRequestLimit(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	release := make(chan struct{})
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		if n == 1 {
			<-release
		}
		return true
	}
	s.enable(t, "ws_1", sk.srv.URL, false)
	f, _ := s.run(t, s.config(), Deps{})
	const total = 60
	var evs []event.Event
	for i := range total {
		// About 20,400 bytes per call: 25 of them exceed 500,000 bytes.
		evs = append(evs, mkEvent("ws_1", i, "Source Created", `{"blob": "`+stringOf('x', 19_900)+`"}`))
	}
	s.produce(t, evs...)
	eventually(t, func() bool { return len(f.slots) == total }, "all read while the first request is in flight")
	close(release)

	eventually(t, func() bool { return s.committed(t)[0] == total }, "all finished")
	require.Equal(t, expectIDs("ws_1", 0, total), sk.ids("key-ws_1"), "all delivered, in order")
	sk.mu.Lock()
	defer sk.mu.Unlock()
	require.Less(t, len(sk.sizes["key-ws_1"]), total/10, "batched: %v", sk.sizes["key-ws_1"])
	for _, n := range sk.sizes["key-ws_1"] {
		require.LessOrEqual(t, n, 500_000)
	}
}

// A 429's Retry-After is waited for although the backoff is far shorter;
// a target that keeps failing is dead-lettered after MaxAttempts attempts
// (retries_exhausted); an alert webhook's 404 dead-letters the alert.
func TestRetryAfterExhaustedRetriesAndRejectedAlerts(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	var mu sync.Mutex
	at := map[string][]time.Time{}
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		mu.Lock()
		at[key] = append(at[key], time.Now())
		mu.Unlock()
		switch {
		case key == "key-ws_429" && n == 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return false
		case key == "key-ws_500":
			http.Error(w, "boom", http.StatusInternalServerError)
			return false
		case key == "alert":
			http.Error(w, "no such hook", http.StatusNotFound)
			return false
		}
		return true
	}
	s.enable(t, "ws_429", sk.srv.URL, false)
	s.enable(t, "ws_500", sk.srv.URL, false)
	s.alertOn(t, "ws_hook", sk, "Warehouses Disabled")
	cfg := s.config()
	cfg.MaxAttempts = 3
	_, _ = s.run(t, cfg, Deps{})
	s.produce(t, mkEvent("ws_429", 0, "Source Created", ""), mkEvent("ws_500", 0, "Source Created", ""),
		mkEvent("ws_hook", 0, "Warehouses Disabled", ""))

	dl := s.dlqRecords(t, 2)
	require.Len(t, dl, 2)
	byTarget := map[string]*kgo.Record{}
	for _, r := range dl {
		byTarget[header(r, topics.HeaderForwardTarget)] = r
	}
	require.Equal(t, "ws_500", string(byTarget[TargetSource].Key))
	require.Contains(t, header(byTarget[TargetSource], topics.HeaderDLQReason), "retries_exhausted: HTTP 500")
	require.Equal(t, "3", header(byTarget[TargetSource], topics.HeaderDLQAttempts))
	require.Equal(t, "ws_hook", string(byTarget[TargetAlert].Key))
	require.Contains(t, header(byTarget[TargetAlert], topics.HeaderDLQReason), "rejected: HTTP 404")

	eventually(t, func() bool { return s.committed(t)[0] == 3 }, "delivered or dead-lettered: all committed")
	require.Equal(t, []string{"ws_429-evt-00000"}, sk.ids("key-ws_429"))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, at["key-ws_500"], 3, "MaxAttempts attempts")
	require.Len(t, at["alert"], 1, "a 404 is not retried")
	require.Len(t, at["key-ws_429"], 2)
	require.GreaterOrEqual(t, at["key-ws_429"][1].Sub(at["key-ws_429"][0]), 900*time.Millisecond, "Retry-After: 1 honoured")
}

func stringOf(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

func TestClassifyDecidesRetries(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("Retry-After", "7")
	e := Classify(429, h, nil, now)
	require.True(t, e.Retryable)
	require.Equal(t, 7*time.Second, e.RetryAfter)
	h.Set("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
	require.Equal(t, 90*time.Second, Classify(503, h, nil, now).RetryAfter)
	require.True(t, Classify(500, nil, nil, now).Retryable)
	require.True(t, Classify(0, nil, context.DeadlineExceeded, now).Retryable)
	require.True(t, Classify(408, nil, nil, now).Retryable)
	require.False(t, Classify(400, nil, nil, now).Retryable)
	require.False(t, Classify(404, nil, nil, now).Retryable)
	require.Equal(t, "rejected", Classify(403, nil, nil, now).Reason())
}

func TestBackoffIsCappedWithJitterAndHonoursRetryAfter(t *testing.T) {
	f := &Forwarder{cfg: Defaults(), m: newMetrics(nil)}
	f.cfg.RetryMin, f.cfg.RetryMax, f.cfg.MaxAttempts = 100*time.Millisecond, time.Second, 6
	tg := &target{kind: TargetSource}
	var last time.Duration
	for i := 1; i < 6; i++ {
		d, reason := f.settle(tg, &DeliveryError{Status: 500, Retryable: true})
		require.Empty(t, reason)
		full := min(100*time.Millisecond<<(i-1), time.Second)
		require.GreaterOrEqual(t, d, full/2)
		require.LessOrEqual(t, d, full)
		last = d
	}
	require.LessOrEqual(t, last, time.Second)
	_, reason := f.settle(tg, &DeliveryError{Status: 500, Retryable: true})
	require.Contains(t, reason, "retries_exhausted", "the 6th failure exhausts the attempts")

	tg = &target{kind: TargetSource}
	d, _ := f.settle(tg, &DeliveryError{Status: 429, Retryable: true, RetryAfter: 3 * time.Second})
	require.Equal(t, 3*time.Second, d)
}

func TestReplayRedeliversDeadLetters(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	var mu sync.Mutex
	broken := true
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		mu.Lock()
		defer mu.Unlock()
		if broken && key != "alert" {
			http.Error(w, "invalid event", http.StatusBadRequest)
			return false
		}
		return true
	}
	s.enable(t, "ws_1", sk.srv.URL, false)
	s.enable(t, "ws_2", sk.srv.URL, false)
	_, stop := s.run(t, s.config(), Deps{})
	s.produce(t, mkEvent("ws_1", 0, "Source Created", ""), mkEvent("ws_2", 0, "Source Created", ""), mkEvent("ws_1", 1, "Source Created", ""))
	require.Len(t, s.dlqRecords(t, 3), 3)
	stop()

	mu.Lock()
	broken = false
	mu.Unlock()
	ctx := context.Background()
	cfg := s.config()
	var out strings.Builder
	st, err := Replay(ctx, cfg, Deps{KafkaOpts: s.opts}, ReplayOptions{DryRun: true, Out: &out})
	require.NoError(t, err)
	require.Equal(t, 3, st.Listed)
	require.Contains(t, out.String(), "ws_1-evt-00000")
	require.Zero(t, sk.count("key-ws_1"), "a dry run sends nothing")

	st, err = Replay(ctx, cfg, Deps{KafkaOpts: s.opts}, ReplayOptions{Workspace: "ws_1"})
	require.NoError(t, err)
	require.Equal(t, ReplayStats{Delivered: 2, Requeued: 1}, st)
	require.Equal(t, []string{"ws_1-evt-00000", "ws_1-evt-00001"}, sk.ids("key-ws_1"))
	require.Zero(t, sk.count("key-ws_2"))

	st, err = Replay(ctx, cfg, Deps{KafkaOpts: s.opts}, ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, ReplayStats{Delivered: 1}, st, "the requeued dead letter of ws_2 is replayed next time; done ones are not")
	require.Equal(t, []string{"ws_2-evt-00000"}, sk.ids("key-ws_2"))
}

func TestSettingsChangesApplyWhileRunning(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	sk.behave = func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		http.Error(w, "down", http.StatusBadGateway)
		return false
	}
	s.enable(t, "ws_1", sk.srv.URL, false)
	f, _ := s.run(t, s.config(), Deps{})
	s.produce(t, mkEvent("ws_1", 0, "Source Created", ""), mkEvent("ws_1", 1, "Source Created", ""))
	eventually(t, func() bool {
		sk.mu.Lock()
		defer sk.mu.Unlock()
		return sk.requests["key-ws_1"] >= 3
	}, "retrying a failing target")
	require.Empty(t, s.committed(t), "nothing committed while undelivered")

	// The owner turns forwarding off: the queued events are dropped and the
	// partition moves on.
	s.put(t, "ws_1", trackingplan.KindForwarding, trackingplan.Forwarding{Enabled: false})
	eventually(t, func() bool { return s.committed(t)[0] == 2 }, "queue dropped after forwarding was turned off")

	// Turned on again with a working target: new events flow at once.
	sk.mu.Lock()
	sk.behave = nil
	sk.mu.Unlock()
	s.enable(t, "ws_1", sk.srv.URL, false)
	eventually(t, func() bool {
		ws := f.Workspaces().Get("ws_1")
		return ws != nil && ws.Forwarding.Enabled
	}, "settings applied")
	s.produce(t, mkEvent("ws_1", 2, "Source Created", ""))
	eventually(t, func() bool { return len(sk.ids("key-ws_1")) == 1 }, "delivered after re-enabling")
	require.Equal(t, []string{"ws_1-evt-00002"}, sk.ids("key-ws_1"))
}

func TestAResentIDIsForwardedAndAlertedOnce(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	s.enable(t, "ws_1", sk.srv.URL, false)
	s.alertOn(t, "ws_1", sk, "Warehouses Disabled")
	_, _ = s.run(t, s.config(), Deps{})

	first := mkEvent("ws_1", 1, "Warehouses Disabled", "")
	resent := first
	resent.Timestamp = first.Timestamp.Add(time.Minute) // rebuilt before the retry
	other := mkEvent("ws_2", 1, "Warehouses Disabled", "")
	other.ID = first.ID // the same id in another workspace is another event
	s.enable(t, "ws_2", sk.srv.URL, false)
	s.produce(t, first, mkEvent("ws_1", 2, "Source Created", ""), resent, first, other)

	eventually(t, func() bool { return s.committed(t)[0] == 5 }, "processed")
	require.Equal(t, []string{"ws_1-evt-00001", "ws_1-evt-00002"}, sk.ids("key-ws_1"), "each id forwarded once")
	require.Equal(t, 2, sk.count("key-ws_1"), "no call sent twice, also within one batch")
	require.Equal(t, "2026-11-25T10:00:00.001Z", sk.calls("key-ws_1")[0].Timestamp, "the first version")
	require.Equal(t, []string{"ws_1-evt-00001"}, sk.ids("key-ws_2"))
	sk.mu.Lock()
	alerts := len(sk.alerts)
	sk.mu.Unlock()
	require.Equal(t, 1, alerts, "alerted once")
}

func TestRecentIDsForgetsTheOlderGeneration(t *testing.T) {
	r := newRecentIDs(2)
	require.False(t, r.seen("source", "ws", "a"))
	r.add("source", "ws", "a")
	require.True(t, r.seen("source", "ws", "a"))
	require.False(t, r.seen("alert", "ws", "a"), "per target kind")
	require.False(t, r.seen("source", "ws2", "a"), "per workspace")
	r.add("source", "ws", "b")
	r.add("source", "ws", "c")
	require.True(t, r.seen("source", "ws", "a"), "still in the older generation")
	r.add("source", "ws", "d")
	r.add("source", "ws", "e")
	require.False(t, r.seen("source", "ws", "a"), "forgotten after two generations")
	require.True(t, r.seen("source", "ws", "d"))

	long := strings.Repeat("x", 300) // a key longer than seen's buffer
	r.add("source", "ws", long)
	require.True(t, r.seen("source", "ws", long))
	require.False(t, r.seen("source", "ws", long[1:]))
}

// TestReplayAppliesTheCurrentAlertSettings replays alert dead letters after
// the settings changed: an event no longer on the alert list, or a failure
// that hard_failures_only now leaves out, is dropped as the live
// forwarder would drop it; the others are alerted.
func TestReplayAppliesTheCurrentAlertSettings(t *testing.T) {
	s := newStack(t, false, 1)
	sk := newSink(t)
	s.enable(t, "ws_1", sk.srv.URL, true)
	s.alertOn(t, "ws_1", sk, "Warehouses Disabled", "Audience Run Failed")
	dead := []event.Event{
		mkEvent("ws_1", 1, "Warehouses Disabled", ""),                                  // on the list: alerted
		mkEvent("ws_1", 2, "Source Created", ""),                                       // no longer on the list
		mkEvent("ws_1", 3, "Audience Run Failed", `{"attempt": 1, "max_attempts": 3}`), // will be retried
		mkEvent("ws_1", 4, "Audience Run Failed", `{"attempt": 3, "max_attempts": 3}`), // the last attempt: alerted
	}
	cl, err := kgo.NewClient(s.opts...)
	require.NoError(t, err)
	defer cl.Close()
	for i := range dead {
		v, err := event.Marshal(&dead[i])
		require.NoError(t, err)
		require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: s.dlq, Key: []byte("ws_1"), Value: v,
			Headers: []kgo.RecordHeader{{Key: topics.HeaderForwardTarget, Value: []byte(TargetAlert)},
				{Key: topics.HeaderDLQReason, Value: []byte("retries_exhausted: 500")}}}).FirstErr())
	}
	st, err := Replay(context.Background(), s.config(), Deps{KafkaOpts: s.opts}, ReplayOptions{})
	require.NoError(t, err)
	require.Equal(t, ReplayStats{Delivered: 2, Dropped: 2}, st)
	sk.mu.Lock()
	defer sk.mu.Unlock()
	require.Len(t, sk.alerts, 2)
	require.Contains(t, sk.alerts[0]+sk.alerts[1], "Warehouses Disabled")
	require.Contains(t, sk.alerts[0]+sk.alerts[1], "Audience Run Failed")
}
