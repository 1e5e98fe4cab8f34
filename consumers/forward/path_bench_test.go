package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// BenchmarkForwardPath measures the forwarder's own cost per record, from
// the reading loop's dispatch (add) to the commit mark, over the settings
// of scripts/bench-forwarder: 50 workspaces, each with a tracking plan of
// 20 events (block unplanned, omit unplanned properties) and 5 filters.
// Records are decoded, checked for resends, run through the plan and
// filters, encoded, batched per workspace by the forwarder's workers and
// POSTed through its Sender (egress guard included) to a local sink that
// reads and discards the bodies. Fetching from Kafka is left out (the
// floor pays it too). One op is one record; about 93 % pass the filters.
func BenchmarkForwardPath(b *testing.B) {
	var received atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "audit-events"), kfake.SeedTopics(1, "audit-settings"))
	require.NoError(b, err)
	defer c.Close()

	cfg := Defaults()
	cfg.Group, cfg.Topic, cfg.SettingsTopic, cfg.DeadLetterTopic = "bench-fwd", "audit-events", "audit-settings", "audit-forward-dlq"
	cfg.Egress.AllowedTargets = []string{srv.Listener.Addr().String()}
	f, err := New(cfg, Deps{KafkaOpts: []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)},
		OnDelivered: func(time.Duration) { received.Add(1) }})
	require.NoError(b, err)
	defer f.cl.Close()
	defer f.ws.Close()

	const workspaces = 50
	names := benchPlanEvents()
	for _, s := range benchSettings(b, workspaces, srv.URL, names) {
		f.ws.Apply(s[0], []byte(s[1]))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(b, f.ws.WaitIdle(ctx))

	recs := make([]*kgo.Record, b.N)
	var offsets [6]int64
	for i := range recs {
		e := benchPathEvent(i, workspaces, names)
		v, err := event.Marshal(&e)
		require.NoError(b, err)
		p := int32(i % 6)
		recs[i] = &kgo.Record{Topic: cfg.Topic, Partition: p, Offset: offsets[p], Key: []byte(e.WorkspaceID), Value: v,
			Headers: []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte(e.Event)}}}
		offsets[p]++
	}
	var workers sync.WaitGroup
	for range cfg.Workers {
		workers.Go(func() { f.work(ctx) })
	}
	defer func() { f.sched.close(); workers.Wait() }()
	runtime.GC()

	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := range b.N {
		f.add(ctx, recs[i])
	}
	for len(f.slots) > 0 {
		// Not a busy wait: its CPU would count as the forwarder's.
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	if b.N >= 100 && received.Load() == 0 {
		b.Fatal("nothing delivered")
	}
	b.ReportMetric(float64(received.Load())/float64(b.N), "delivered/op")
}

// processCPU is this process's user and system CPU time: a benchmark's
// CPU per op, the figure to compare on a shared machine (wall time per op
// there depends on what else runs).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPlanEvents are the 20 planned events (the first catalogue events
// that are not failures), as in scripts/bench-forwarder.
func benchPlanEvents() []string {
	var out []string
	for _, e := range catalogue.All() {
		if !catalogue.IsFailure(e.Name) {
			out = append(out, e.Name)
		}
		if len(out) == 20 {
			break
		}
	}
	return out
}

// benchSettings are the settings records (key, value) of every workspace:
// forwarding to url, the tracking plan of names and the 5 filters of
// scripts/bench-forwarder.
func benchSettings(b *testing.B, workspaces int, url string, names []string) [][2]string {
	plan := trackingplan.Plan{Events: map[string]trackingplan.PlanEvent{}, UnplannedEvents: "block", UnplannedProperties: "omit"}
	for _, n := range names {
		plan.Events[n] = trackingplan.PlanEvent{Properties: json.RawMessage(`{"type": "object",
			"properties": {"kind": {"type": "string"}, "count": {"type": "integer", "minimum": 0}, "region": {"type": "string"}, "debug": {}},
			"required": ["kind"]}`)}
	}
	filters := trackingplan.Filters{Filters: []trackingplan.Filter{
		{Name: "no tokens", Enabled: true, If: "actor.type == 'access_token'", Action: "drop"},
		{Name: "no debug", Enabled: true, If: "has(properties.debug)", Action: "drop_properties", Properties: []string{"debug"}},
		{Name: "eu only region", Enabled: true, If: "has(properties.region) && properties.region.startsWith('eu')", Action: "allow_properties", Properties: []string{"kind", "region"}},
		{Name: "big counts", Enabled: true, If: "has(properties.count) && properties.count > 1000000", Action: "drop"},
		{Name: "half of ids", Enabled: true, If: "resource.id.endsWith('7')", Action: "sample", Percent: "50"},
	}}
	var out [][2]string
	for i := range workspaces {
		ws := fmt.Sprintf("ws_bench_%03d", i)
		for kind, v := range map[string]any{
			trackingplan.KindForwarding: trackingplan.Forwarding{Enabled: true, Target: trackingplan.Target{URL: url, WriteKey: "bench-" + ws}},
			trackingplan.KindPlan:       plan,
			trackingplan.KindFilters:    filters,
		} {
			raw, err := json.Marshal(v)
			require.NoError(b, err)
			rec, err := json.Marshal(trackingplan.Record{WorkspaceID: ws, Kind: kind, UpdatedAt: time.Now(), Settings: raw})
			require.NoError(b, err)
			out = append(out, [2]string{trackingplan.Key(ws, kind), string(rec)})
		}
	}
	return out
}

// benchPathEvent is event i of scripts/bench-forwarder's backlog.
func benchPathEvent(i, workspaces int, names []string) event.Event {
	ws := fmt.Sprintf("ws_bench_%03d", i%workspaces)
	name := names[i%len(names)]
	entry, _ := catalogue.Lookup(name)
	e := event.Event{
		ID: "bench-" + strconv.Itoa(1_000_000_000 + i)[1:], WorkspaceID: ws, Event: name, Category: entry.Category,
		Timestamp: base.Add(time.Duration(i) * time.Microsecond), ReceivedAt: base,
		Actor:    event.Actor{Type: "user", ID: fmt.Sprintf("usr_%d", i%97), Name: "Bench User", Email: "bench@example.com"},
		Resource: event.Resource{Type: entry.ResourceType, ID: fmt.Sprintf("res_%d", i%10), Name: "Resource"},
		Changes:  map[string]event.Change{"enabled": {Old: json.RawMessage("true"), New: json.RawMessage("false")}},
		Context:  event.Context{IP: "203.0.113.9", UserAgent: "bench/1"},
		Properties: json.RawMessage(fmt.Sprintf(`{"kind": "k%d", "count": %d, "region": "%s", "debug": {"trace": "abc"}, "extra": "unplanned"}`,
			i%5, i%1000, []string{"eu-west-1", "us-east-1"}[i%2])),
	}
	if i%50 == 0 {
		e.Actor.Type = "access_token"
	}
	return e
}
