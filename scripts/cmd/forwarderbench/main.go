// Package main is the forwarderbench command, which measures the forwarder.
//
// It runs against the Kafka broker of AUDITTRAIL_KAFKA_BROKERS and a local
// HTTP sink, with every workspace using a tracking plan of 20 events and 5
// active destination filters. It creates its own topics and group and
// deletes them at the end, and prints:
//
//   - throughput: events/s forwarded when a backlog is drained, next to the
//     floor of the design in the same run: plain franz-go consuming plus
//     HTTP POSTs of the same batches of the same track calls to the same
//     sink (floor.go). The two drain the backlog in alternating rounds,
//     each with a new group from the start; medians and the median ratio
//     are printed;
//   - latency: p50/p99/max read-to-delivered at a steady produce rate.
//
// Run it through scripts/bench-forwarder.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "forwarderbench:", err)
		os.Exit(1)
	}
}

func run() error {
	backlog := flag.Int("events", 300_000, "events in the backlog drained for the throughput figure")
	rounds := flag.Int("rounds", 5, "interleaved rounds of the throughput figure (the floor, then the forwarder)")
	rate := flag.Int("rate", 5000, "events/s produced for the latency figure")
	dur := flag.Duration("duration", 20*time.Second, "how long to produce at -rate")
	workspaces := flag.Int("workspaces", 50, "workspaces with forwarding enabled")
	partitions := flag.Int("partitions", 6, "partitions of the events topic")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the last round's forwarder drain (the whole process: forwarder, sink, producer idle) to this file")
	flag.Parse()
	if *rounds < 1 || *backlog < 1 {
		return errors.New("-rounds and -events must be at least 1")
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300) // as consumers/cmd/forwarder runs (the floor shares the process)
	}
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	if err := errors.Join(env.Err(), kc.Validate()); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b, err := newBench(ctx, kc, *partitions, *workspaces)
	if err != nil {
		return err
	}
	b.cpuProfile = *cpuProfile
	defer b.close()
	fmt.Printf("forwarder benchmark: %d workspaces, tracking plan of %d events, 5 filters, %d partitions, sink %s\n",
		*workspaces, len(b.names), *partitions, b.sink.URL)
	fmt.Printf("producing a backlog of %d events...\n", *backlog)
	if err := b.produce(ctx, 0, *backlog); err != nil {
		return err
	}
	calls, err := b.trackCalls(ctx, *backlog)
	if err != nil {
		return err
	}
	stopForwarder, err := b.throughput(ctx, *rounds, *backlog, calls)
	if err != nil {
		return err
	}
	err = b.latency(ctx, *rate, *dur, *backlog)
	if err := errors.Join(err, stopForwarder()); err != nil {
		return err
	}
	b.printLatency(*rate)
	return nil
}

// bench is the benchmark's own topics and group, its sink and producer,
// and the latencies the forwarder reports.
type bench struct {
	kc                            kafkaconn.Config
	evTopic, setTopic, dlq, group string
	workspaces                    int
	names                         []string // the planned events
	admin, prod                   *kgo.Client
	settings                      []setting
	groups                        []string // every group of the run, deleted at the end
	sink                          *httptest.Server
	received                      atomic.Int64 // events the sink received, over the whole run
	requests                      atomic.Int64 // requests the sink took, over the whole run

	cpuProfile string // see -cpuprofile

	measuring atomic.Bool
	latMu     sync.Mutex
	lats      []time.Duration
}

// newBench creates the topics, starts the sink and writes every
// workspace's settings.
func newBench(ctx context.Context, kc kafkaconn.Config, partitions, workspaces int) (_ *bench, err error) {
	sfx := fmt.Sprintf("%d", time.Now().UnixNano())
	b := &bench{kc: kc, evTopic: "bench-events-" + sfx, setTopic: "bench-settings-" + sfx, dlq: "bench-fdlq-" + sfx,
		group: "bench-forwarder-" + sfx + "-", workspaces: workspaces, names: planEvents()}
	if b.admin, err = kgo.NewClient(kc.Options()...); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if err := kafkaconn.EnsureTopics(ctx, b.admin, partitions, nil, b.evTopic, b.dlq); err != nil {
		return nil, err
	}
	if err := kvtopic.Ensure(ctx, kc.Options(), b.setTopic); err != nil {
		return nil, err
	}
	b.sink = httptest.NewServer(http.HandlerFunc(b.receive))
	b.settings = settings(workspaces, b.sink.URL, b.names)
	if err := writeSettings(ctx, kc.Options(), b.setTopic, b.settings); err != nil {
		return nil, err
	}
	b.prod, err = kgo.NewClient(append(kc.Options(), kgo.DefaultProduceTopic(b.evTopic), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(200_000))...)
	return b, err
}

// receive is the sink: it counts the events of each batch.
func (b *bench) receive(w http.ResponseWriter, r *http.Request) {
	var batch struct {
		Batch []json.RawMessage `json:"batch"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	b.received.Add(int64(len(batch.Batch)))
	b.requests.Add(1)
}

func (b *bench) close() {
	if b.prod != nil {
		b.prod.Close()
	}
	if b.sink != nil {
		b.sink.Close()
	}
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = kadm.NewClient(b.admin).DeleteTopics(c, b.evTopic, b.setTopic, b.dlq)
	_, _ = kadm.NewClient(b.admin).DeleteGroups(c, b.groups...)
	b.admin.Close()
}

// newGroup names a new consumer group of the run.
func (b *bench) newGroup(side string, round int) string {
	g := b.group + side + "-" + strconv.Itoa(round)
	b.groups = append(b.groups, g)
	return g
}

// config is the forwarder's configuration: the defaults with the
// benchmark's topics and the given group.
func (b *bench) config(group string) forward.Config {
	cfg := forward.Defaults()
	cfg.Group, cfg.Topic, cfg.SettingsTopic, cfg.DeadLetterTopic = group, b.evTopic, b.setTopic, b.dlq
	// The local sink is a loopback address: allowed by its exact ip:port.
	cfg.Egress.AllowedTargets = []string{b.sink.Listener.Addr().String()}
	return cfg
}

// forwarder is a forwarder of the benchmark's topics and the given group
// that reports each delivery's latency while measuring.
func (b *bench) forwarder(group string) (*forward.Forwarder, error) {
	return forward.New(b.config(group), forward.Deps{KafkaOpts: b.kc.Options(), Log: slog.New(slog.DiscardHandler),
		OnDelivered: func(d time.Duration) {
			if b.measuring.Load() {
				b.latMu.Lock()
				b.lats = append(b.lats, d)
				b.latMu.Unlock()
			}
		}})
}

// latency produces rate events/s for d after the backlog's events, and
// waits until they are delivered, recording each delivery's latency.
func (b *bench) latency(ctx context.Context, rate int, d time.Duration, backlog int) error {
	b.measuring.Store(true)
	defer b.measuring.Store(false)
	base := b.received.Load() - int64(expectedDelivered(backlog, b.workspaces, b.names))
	fmt.Printf("producing %d events/s for %s...\n", rate, d)
	tick := time.NewTicker(10 * time.Millisecond)
	per := rate / 100
	end := time.Now().Add(d)
	n := backlog
	for time.Now().Before(end) && ctx.Err() == nil {
		<-tick.C
		if err := b.produce(ctx, n, n+per); err != nil {
			return err
		}
		n += per
	}
	tick.Stop()
	want := base + int64(expectedDelivered(n, b.workspaces, b.names))
	for b.received.Load() < want && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func (b *bench) printLatency(rate int) {
	b.latMu.Lock()
	defer b.latMu.Unlock()
	slices.Sort(b.lats)
	q := func(p float64) time.Duration {
		if len(b.lats) == 0 {
			return 0
		}
		return b.lats[min(len(b.lats)-1, int(p*float64(len(b.lats))))]
	}
	fmt.Printf("latency at %d events/s (%d delivered): p50 %s, p99 %s, max %s (read to delivery acknowledged)\n",
		rate, len(b.lats), q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(1).Round(time.Microsecond))
}

// produce produces the benchmark's events [from, to).
func (b *bench) produce(ctx context.Context, from, to int) error {
	return produce(ctx, b.prod, b.evTopic, from, to, b.workspaces, b.names)
}

// planEvents are the 20 planned events.
func planEvents() []string {
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

// setting is one record of the settings table.
type setting struct {
	key   string
	value []byte
}

// settings are the records of every workspace: forwarding to url, the
// tracking plan of names and the 5 filters.
func settings(workspaces int, url string, names []string) []setting {
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
	var out []setting
	for i := range workspaces {
		ws := fmt.Sprintf("ws_bench_%03d", i)
		for kind, v := range map[string]any{
			trackingplan.KindForwarding: trackingplan.Forwarding{Enabled: true, Target: trackingplan.Target{URL: url, WriteKey: "bench-" + ws}},
			trackingplan.KindPlan:       plan,
			trackingplan.KindFilters:    filters,
		} {
			raw, _ := json.Marshal(v)
			rec, _ := json.Marshal(trackingplan.Record{WorkspaceID: ws, Kind: kind, UpdatedAt: time.Now(), Settings: raw})
			out = append(out, setting{trackingplan.Key(ws, kind), rec})
		}
	}
	return out
}

func writeSettings(ctx context.Context, opts []kgo.Opt, topic string, records []setting) error {
	table, err := kvtopic.New(opts, topic, nil)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = table.Run(tctx) }()
	if err := table.WaitReady(ctx); err != nil {
		return err
	}
	for _, r := range records {
		if err := table.Put(ctx, r.key, r.value); err != nil {
			return err
		}
	}
	return nil
}

func benchEvent(i, workspaces int, names []string) event.Event {
	ws := fmt.Sprintf("ws_bench_%03d", i%workspaces)
	name := names[i%len(names)]
	entry, _ := catalogue.Lookup(name)
	e := event.Event{
		ID: fmt.Sprintf("bench-%09d", i), WorkspaceID: ws, Event: name, Category: entry.Category,
		Timestamp: time.Now().UTC(), ReceivedAt: time.Now().UTC(),
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

// expectedDelivered counts the events of [0, n) the filters let through.
func expectedDelivered(n, workspaces int, names []string) int {
	c := 0
	for i := range n {
		if i%50 == 0 {
			continue
		}
		if i%10 == 7 && !trackingplan.Sampled(fmt.Sprintf("bench-%09d", i), 5000) {
			continue
		}
		c++
	}
	return c
}

func produce(ctx context.Context, cl *kgo.Client, topic string, from, to, workspaces int, names []string) error {
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := from; i < to; i++ {
		e := benchEvent(i, workspaces, names)
		v, err := event.Marshal(&e)
		if err != nil {
			return err
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(e.WorkspaceID), Value: v,
			Headers: []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte(e.Event)}, {Key: seqHeader, Value: strconv.AppendInt(nil, int64(i), 10)}}},
			func(_ *kgo.Record, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
				wg.Done()
			})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}
