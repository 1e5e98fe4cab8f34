package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// stack is a Kafka (kfake or the real broker) with the forwarder's topics.
type stack struct {
	opts                  []kgo.Opt
	events, settings, dlq string
	group                 string
	prod                  *kgo.Client
	table                 *kvtopic.Table
	cancelTable           context.CancelFunc
	tableDone             chan struct{}
}

func newStack(t *testing.T, real bool, partitions int) *stack {
	t.Helper()
	s := &stack{group: "forwarder-test-" + stacktest.Suffix()}
	if real {
		names := stacktest.Topics(t, partitions, "audit-events", "audit-forward-dlq")
		s.events, s.dlq = names[0], names[1]
		s.settings = "audit-settings-" + stacktest.Suffix()
		s.opts = []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, kvtopic.Ensure(ctx, s.opts, s.settings))
		t.Cleanup(func() {
			cl, err := kgo.NewClient(s.opts...)
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, _ = kadm.NewClient(cl).DeleteTopics(ctx, s.settings)
				_, _ = kadm.NewClient(cl).DeleteGroup(ctx, s.group)
				cl.Close()
			}
		})
	} else {
		s.events, s.settings, s.dlq = "audit-events", "audit-settings", "audit-forward-dlq"
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), s.events, s.dlq), kfake.SeedTopics(1, s.settings))
		require.NoError(t, err)
		t.Cleanup(c.Close)
		s.opts = []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	}
	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, s.opts...), kgo.DefaultProduceTopic(s.events),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond))...)
	require.NoError(t, err)
	t.Cleanup(prod.Close)
	s.prod = prod
	table, err := kvtopic.New(s.opts, s.settings, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s.table, s.cancelTable, s.tableDone = table, cancel, make(chan struct{})
	go func() { defer close(s.tableDone); _ = table.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-s.tableDone })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	require.NoError(t, table.WaitReady(wctx))
	return s
}

func (s *stack) config() Config {
	c := Defaults()
	c.Group, c.Topic, c.SettingsTopic, c.DeadLetterTopic = s.group, s.events, s.settings, s.dlq
	c.Workers = 16
	c.RequestTimeout = 300 * time.Millisecond
	c.RetryMin, c.RetryMax = 5*time.Millisecond, 40*time.Millisecond
	c.MaxAttempts = 100
	c.ViolationInterval = 50 * time.Millisecond
	c.ShutdownTimeout = 5 * time.Second
	c.Egress.AllowedTargets = sinkAddrs()
	return c
}

// put stores one settings kind for a workspace, as the API does.
func (s *stack) put(t *testing.T, ws, kind string, v any) {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	rec, err := json.Marshal(trackingplan.Record{WorkspaceID: ws, Kind: kind, UpdatedAt: time.Now(), Settings: raw})
	require.NoError(t, err)
	require.NoError(t, s.table.Put(context.Background(), trackingplan.Key(ws, kind), rec))
}

func (s *stack) enable(t *testing.T, ws, url string, hardOnly bool) {
	s.put(t, ws, trackingplan.KindForwarding, trackingplan.Forwarding{Enabled: true,
		Target: trackingplan.Target{URL: url, WriteKey: "key-" + ws}, HardFailuresOnly: hardOnly})
}

// alertOn turns alerts on for a workspace's events, posted to the sink.
func (s *stack) alertOn(t *testing.T, ws string, sk *sink, events ...string) {
	t.Helper()
	s.put(t, ws, trackingplan.KindAlerts, trackingplan.Alerts{Enabled: true, WebhookURL: sk.srv.URL + "/alert", Events: events})
}

var base = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func mkEvent(ws string, i int, name string, props string) event.Event {
	e := event.Event{
		ID: fmt.Sprintf("%s-evt-%05d", ws, i), WorkspaceID: ws, Event: name, Category: "Sources",
		Timestamp: base.Add(time.Duration(i) * time.Millisecond), ReceivedAt: base,
		Actor:    event.Actor{Type: "user", ID: "usr_1", Name: "Alice", Email: "alice@example.com"},
		Resource: event.Resource{Type: "source", ID: "src_1", Name: "Website"},
		Changes:  map[string]event.Change{"enabled": {Old: json.RawMessage("true"), New: json.RawMessage("false")}},
		Context:  event.Context{IP: "203.0.113.9"},
	}
	if props != "" {
		e.Properties = json.RawMessage(props)
	}
	return e
}

// produce publishes events keyed by workspace, as the emitter does.
func (s *stack) produce(t *testing.T, evs ...event.Event) {
	t.Helper()
	recs := make([]*kgo.Record, 0, len(evs))
	for i := range evs {
		v, err := event.Marshal(&evs[i])
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Topic: s.events, Key: []byte(evs[i].WorkspaceID), Value: v,
			Headers: []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte(evs[i].Event)}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.prod.ProduceSync(ctx, recs...).FirstErr())
}

// run starts a forwarder and returns a stop function that waits for it.
func (s *stack) run(t *testing.T, cfg Config, d Deps) (*Forwarder, func()) {
	t.Helper()
	f := s.build(t, cfg, d)
	return f, s.start(t, f)
}

// build creates a forwarder on the stack without running it.
func (s *stack) build(t *testing.T, cfg Config, d Deps) *Forwarder {
	t.Helper()
	d.KafkaOpts = s.opts
	if d.Log == nil && os.Getenv("AUDITTRAIL_TEST_LOG") == "1" {
		d.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := New(cfg, d)
	require.NoError(t, err)
	return f
}

// start runs f and returns a stop function that waits for it.
func (s *stack) start(t *testing.T, f *Forwarder) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// dlqRecords reads everything on the dead-letter topic.
func (s *stack) dlqRecords(t *testing.T, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, s.opts...), kgo.ConsumeTopics(s.dlq),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(out) < want && ctx.Err() == nil {
		out = append(out, cl.PollFetches(ctx).Records()...)
	}
	return out
}

// sink is a local event-streams source: it records every track call it
// accepted per write key, in arrival order.
type sink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]TrackCall // by write key
	// requests counts well-formed requests per write key (accepted or
	// not); sizes holds the body size of every request.
	requests map[string]int
	sizes    map[string][]int
	alerts   []string
	// behave decides the answer to the n-th request (from 1) of a write
	// key; nil accepts.
	behave func(w http.ResponseWriter, r *http.Request, key string, n int) bool
	// reject, when set, is asked after behave accepted a request: a
	// non-zero status refuses the whole request with it.
	reject func(calls []TrackCall) int
}

func newSink(t *testing.T) *sink {
	s := &sink{got: map[string][]TrackCall{}, requests: map[string]int{}, sizes: map[string][]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	allowSink(s.srv.Listener.Addr().String())
	return s
}

// sinks are the ip:port of every sink started by this test binary: the
// forwarder's allow-list (stack.config), which otherwise refuses loopback
// addresses.
var sinks struct {
	mu    sync.Mutex
	addrs []string
}

func allowSink(addr string) {
	sinks.mu.Lock()
	defer sinks.mu.Unlock()
	sinks.addrs = append(sinks.addrs, addr)
}

func sinkAddrs() []string {
	sinks.mu.Lock()
	defer sinks.mu.Unlock()
	return append([]string(nil), sinks.addrs...)
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/alert" {
		var m map[string]string
		_ = json.NewDecoder(r.Body).Decode(&m)
		s.mu.Lock()
		s.requests["alert"]++
		n := s.requests["alert"]
		behave := s.behave
		s.mu.Unlock()
		if behave != nil && !behave(w, r, "alert", n) {
			return
		}
		s.mu.Lock()
		s.alerts = append(s.alerts, m["text"])
		s.mu.Unlock()
		return
	}
	key, pw, ok := r.BasicAuth()
	if !ok || pw != "" || r.URL.Path != "/v1/batch" || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.sizes[key] = append(s.sizes[key], len(body))
	s.mu.Unlock()
	// The limits of the HTTP tracking API as its official libraries count
	// them: 500,000 bytes per request, 32,000 per call.
	if len(body) > 500_000 {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	var raw struct {
		Batch []json.RawMessage `json:"batch"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	for _, c := range raw.Batch {
		if len(c) > 32_000 {
			http.Error(w, "call too large", http.StatusBadRequest)
			return
		}
	}
	var b struct {
		Batch  []TrackCall `json:"batch"`
		SentAt string      `json:"sentAt"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil || b.SentAt == "" {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests[key]++
	n := s.requests[key]
	behave := s.behave
	s.mu.Unlock()
	if behave != nil && !behave(w, r, key, n) {
		return
	}
	if s.reject != nil {
		if status := s.reject(b.Batch); status != 0 {
			http.Error(w, "refused", status)
			return
		}
	}
	s.mu.Lock()
	s.got[key] = append(s.got[key], b.Batch...)
	s.mu.Unlock()
	_, _ = w.Write([]byte(`{"success":true}`))
}

func (s *sink) calls(key string) []TrackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TrackCall(nil), s.got[key]...)
}

// alertTexts returns the alert messages received.
func (s *sink) alertTexts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.alerts...)
}

// requestsOf returns how many requests a write key made.
func (s *sink) requestsOf(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[key]
}

func (s *sink) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got[key])
}

// ids returns the distinct message ids received for a write key, in the
// order first received, and whether they arrived in non-decreasing order
// of first arrival (duplicates from replays allowed).
func (s *sink) ids(key string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range s.calls(key) {
		if !seen[c.MessageID] {
			seen[c.MessageID] = true
			out = append(out, c.MessageID)
		}
	}
	return out
}

func expectIDs(ws string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-evt-%05d", ws, i))
	}
	return out
}

func eventually(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, 60*time.Second, 5*time.Millisecond, append([]any{msg}, args...)...)
}

func contains(haystack []string, needle string) bool {
	for _, h := range haystack {
		if strings.Contains(h, needle) {
			return true
		}
	}
	return false
}
