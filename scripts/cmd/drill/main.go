// Package main is the drill command; it runs the fault drills: under steady load through the real
// ingest gateway and writer binaries, on the real Kafka and ClickHouse
// servers, it injects one fault per scenario and then checks, by counting,
// that the set of event ids stored (read the way the API reads) equals the
// set the gateway accepted, that nothing is visible twice, and that the
// dead-letter topic holds exactly the poison. It prints a table and exits 1
// when any scenario lost or doubled an event.
//
// Scenarios: kill-writer (SIGKILL mid-batch, restart), clickhouse-down
// (stop the server, start it again), kafka-restart (restart the broker),
// poison (1% undecodable or invalid records), duplicates (every batch sent
// twice with the same ids). The server scenarios stop and start the shared
// local servers through scripts/lib/services.sh: run the drill alone.
//
// The sink scenarios also run the forwarder binary, with forwarding turned
// on for every workspace of the load (a settings record per workspace, as
// the settings API writes it) to an in-process target that answers 500
// (sink-500), 429 with Retry-After (sink-429), holds requests past the
// forwarder's timeout (sink-hang), or is slow for the busiest workspace
// only (sink-slow-workspace) for a window during the load. They also check
// that the target acknowledged every forwardable accepted event at least
// once, that the forwarder dead-lettered nothing, that a 429's Retry-After
// was waited out, and that while one workspace was slow the other
// workspaces of its partition kept their delivery latency low.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

const ingestToken = "drill-ingest-token-0123456789abcdef"

var allScenarios = []string{"kill-writer", "poison", "duplicates",
	"sink-500", "sink-429", "sink-hang", "sink-slow-workspace", "clickhouse-down", "kafka-restart"}

// sinkFaults maps the sink scenarios to the fault their target injects.
var sinkFaults = map[string]string{
	"sink-500": fault500, "sink-429": fault429, "sink-hang": faultHang, "sink-slow-workspace": faultSlow,
}

// loadWorkspaces is how many workspaces the load spreads over (Zipf).
const loadWorkspaces = 50

type options struct {
	list      bool // print the scenarios and exit
	scenarios []string
	rate      int           // events/s of steady load
	load      time.Duration // how long load runs
	faultAt   time.Duration // when the fault starts
	downFor   time.Duration // how long a server stays down
	sinkFor   time.Duration // how long a sink fault lasts
	settle    time.Duration // longest wait for the writer to catch up
	root      string
}

func main() {
	o, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "drill:", err)
		os.Exit(2)
	}
	if o.list {
		fmt.Println(strings.Join(allScenarios, "\n"))
		return
	}
	results, err := run(context.Background(), o)
	printTable(os.Stdout, results)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drill:", err)
		os.Exit(1)
	}
	for _, r := range results {
		if !r.ok() {
			fmt.Fprintln(os.Stderr, "drill: FAILED:", r.Scenario)
			os.Exit(1)
		}
	}
	fmt.Println("drill: all scenarios passed")
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "shorter load and outages (CI)")
	only := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	rate := fs.Int("rate", 1000, "events per second of steady load")
	list := fs.Bool("list", false, "print the scenarios, one a line, and exit")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if *list {
		return options{list: true}, nil
	}
	o := options{rate: *rate, load: 30 * time.Second, faultAt: 8 * time.Second, downFor: 30 * time.Second,
		sinkFor: 15 * time.Second, settle: 3 * time.Minute}
	if *quick {
		o.load, o.faultAt, o.downFor, o.sinkFor, o.settle = 15*time.Second, 4*time.Second, 10*time.Second, 5*time.Second, 2*time.Minute
	}
	if o.rate < 10 || o.rate > 50000 {
		return o, errors.New("flag -rate must be 10-50000")
	}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allScenarios, s) {
			return o, fmt.Errorf("flag -scenarios: unknown scenario %q (known: %s)", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	root, err := drillkit.Root()
	o.root = root
	return o, err
}

// result is one row of the table. Recovery is from the end of the fault
// until every event accepted before it is stored (sink scenarios:
// acknowledged by the target, when forwardable).
type result struct {
	Scenario   string        `json:"scenario"`
	Accepted   int           `json:"accepted"`
	Stored     int           `json:"stored"`
	Duplicates int           `json:"duplicates_visible"`
	Lost       int           `json:"lost"`
	Unexpected int           `json:"unexpected"`
	Poison     int           `json:"poison_sent"`
	DeadLetter int           `json:"dead_letters"`
	Recovery   time.Duration `json:"recovery_ns"`
	Forwarding *forwarding   `json:"forwarding,omitempty"` // sink scenarios only
	Err        string        `json:"error,omitempty"`
}

// forwarding is what the target of a sink scenario received.
type forwarding struct {
	// Forwardable counts the accepted events the forwarder must deliver
	// (all of them: no tracking plan or filters are configured, and
	// forward.Process decides it per event).
	Forwardable int `json:"forwardable"`
	// Unique and Deliveries count the events the target acknowledged,
	// once each and in all (a redelivery is at-least-once, not an error).
	Unique     int `json:"forwarded"`
	Deliveries int `json:"deliveries"`
	// Missing counts forwardable events the target never acknowledged;
	// Unexpected, acknowledged ids that were never posted.
	Missing    int `json:"not_forwarded"`
	Unexpected int `json:"unexpected"`
	// DeadLetters counts the forwarder's dead letters (the faults are
	// shorter than its retries, so none are expected).
	DeadLetters int `json:"dead_letters"`
	// Fault says what the target did during the fault.
	Fault string `json:"fault"`
}

func (r result) ok() bool {
	if f := r.Forwarding; f != nil && (f.Missing != 0 || f.Unexpected != 0 || f.DeadLetters != 0 || f.Forwardable == 0) {
		return false
	}
	return r.Err == "" && r.Lost == 0 && r.Duplicates == 0 && r.Unexpected == 0 && r.Poison == r.DeadLetter && r.Accepted > 0
}

func printTable(w io.Writer, rs []result) {
	fmt.Fprintln(w, "| scenario | accepted | stored | duplicates visible | lost | dead letters / poison | forwardable | forwarded | redelivered | not forwarded | recovery time | sink during the fault | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		verdict := "ok"
		if !r.ok() {
			verdict = "FAILED " + r.Err
		}
		fwd, fault := "- | - | - | -", "-"
		if f := r.Forwarding; f != nil {
			fwd = fmt.Sprintf("%d | %d | %d | %d", f.Forwardable, f.Unique, f.Deliveries-f.Unique, f.Missing)
			fault = f.Fault
			if f.DeadLetters > 0 || f.Unexpected > 0 {
				fault += fmt.Sprintf("; forwarder dead letters %d, unexpected ids %d", f.DeadLetters, f.Unexpected)
			}
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d / %d | %s | %s | %s | %s |\n", r.Scenario, r.Accepted, r.Stored, r.Duplicates,
			r.Lost, r.DeadLetter, r.Poison, fwd, r.Recovery.Round(100*time.Millisecond), fault, verdict)
	}
}

func run(ctx context.Context, o options) ([]result, error) {
	pkgs := []string{"consumers/cmd/writer", "producers/cmd/ingest"}
	if slices.ContainsFunc(o.scenarios, func(s string) bool { return sinkFaults[s] != "" }) {
		pkgs = append(pkgs, "consumers/cmd/forwarder")
	}
	dir, err := os.MkdirTemp("", "audittrail-drill-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bins, err := proctest.Build(dir, pkgs...)
	if err != nil {
		return nil, err
	}
	var out []result
	for _, s := range o.scenarios {
		fmt.Fprintf(os.Stderr, "drill: %s ...\n", s)
		r := runScenario(ctx, o, bins, s)
		fwd := ""
		if f := r.Forwarding; f != nil {
			fwd = fmt.Sprintf(" forwardable %d forwarded %d redelivered %d not forwarded %d (%s)",
				f.Forwardable, f.Unique, f.Deliveries-f.Unique, f.Missing, f.Fault)
		}
		fmt.Fprintf(os.Stderr, "drill: %s: accepted %d stored %d lost %d duplicates %d%s recovery %s %s\n",
			s, r.Accepted, r.Stored, r.Lost, r.Duplicates, fwd, r.Recovery.Round(100*time.Millisecond), r.Err)
		out = append(out, r)
	}
	return out, nil
}

// env is one scenario's isolated slice of the servers.
type env struct {
	o                     options
	sfx                   string
	topic, dlq, group, db string
	addrs                 map[string]string // process name -> health address
	vars                  []string
	procs                 map[string]*exec.Cmd
	logs                  map[string]*bytes.Buffer
	bins                  map[string]string
	accepted              map[string]bool // ids the gateway answered 202 for
	sent                  map[string]bool // every id posted, answered or not
	mu                    sync.Mutex
	poison                int
	chConn                driver.Conn
	producer              *kgo.Client
	sendTwice             bool

	// Sink scenarios only.
	sink                       *sink
	settings, fwdDLQ, fwdGroup string
	workspaces                 map[string]*forward.Workspace // the settings the forwarder has
	forwardable                map[string]bool               // accepted ids the forwarder must deliver
	postedAt                   map[string]time.Time          // when each id was first posted
}

// drillPartitions is the partition count of the scenario's events topic.
const drillPartitions = 4

// loadConfig is the load's traffic: loadWorkspaces workspaces, named
// ws_0000 (the busiest) to ws_0049.
func loadConfig(seed uint64) loadgen.Config {
	return loadgen.Config{Workspaces: loadWorkspaces, ZipfS: 1.2, Seed: seed}
}

func runScenario(ctx context.Context, o options, bins map[string]string, scenario string) (res result) {
	res.Scenario = scenario
	sfx := fmt.Sprintf("%x", time.Now().UnixNano())
	e := &env{o: o, sfx: sfx, topic: "drill-events-" + sfx, dlq: "drill-dlq-" + sfx, group: "drill-writer-" + sfx,
		db: "drill_" + sfx, addrs: map[string]string{"ingest": proctest.FreeAddr(), "writer": proctest.FreeAddr()}, bins: bins,
		procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}, accepted: map[string]bool{}, sent: map[string]bool{},
		sendTwice: scenario == "duplicates"}
	e.vars = []string{
		"AUDITTRAIL_KAFKA_TOPIC=" + e.topic, "AUDITTRAIL_WRITER_DLQ_TOPIC=" + e.dlq,
		"AUDITTRAIL_WRITER_GROUP=" + e.group, "AUDITTRAIL_CLICKHOUSE_DATABASE=" + e.db,
		"AUDITTRAIL_INGEST_ADDR=" + e.addrs["ingest"], "AUDITTRAIL_WRITER_ADDR=" + e.addrs["writer"],
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken, fmt.Sprintf("AUDITTRAIL_KAFKA_PARTITIONS=%d", drillPartitions),
		"AUDITTRAIL_WRITER_INSTANCE_ID=drill-writer-1",
	}
	fault := sinkFaults[scenario]
	if fault != "" {
		e.settings, e.fwdDLQ, e.fwdGroup = "drill-settings-"+sfx, "drill-fdlq-"+sfx, "drill-forwarder-"+sfx
		e.addrs["forwarder"] = proctest.FreeAddr()
		e.forwardable, e.postedAt = map[string]bool{}, map[string]time.Time{}
		e.vars = append(e.vars,
			"AUDITTRAIL_SETTINGS_TOPIC="+e.settings, "AUDITTRAIL_FORWARDER_DLQ_TOPIC="+e.fwdDLQ,
			"AUDITTRAIL_FORWARDER_GROUP="+e.fwdGroup, "AUDITTRAIL_FORWARDER_ADDR="+e.addrs["forwarder"],
			"AUDITTRAIL_FORWARDER_REQUEST_TIMEOUT="+sinkTimeout.String())
	}
	defer e.cleanup()
	fail := func(err error) result {
		res.Err = err.Error()
		for name, b := range e.logs {
			fmt.Fprintf(os.Stderr, "--- %s log (last 2000 bytes) ---\n%s\n", name, tail(b.Bytes(), 2000))
		}
		return res
	}
	var err error
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	e.chConn, err = chconn.Open(cctx, chconn.Config{Addr: "127.0.0.1:9000", Database: e.db, Username: "default",
		DialTimeout: 2 * time.Second, ReadTimeout: time.Minute, MaxOpenConns: 4})
	cancel()
	if err != nil {
		return fail(err)
	}
	e.producer, err = kgo.NewClient(kgo.SeedBrokers("127.0.0.1:9092"), kgo.DefaultProduceTopic(e.topic))
	if err != nil {
		return fail(err)
	}
	procs := []string{"writer", "ingest"}
	if fault != "" {
		if e.sink, err = newSink(fault, slowWorkspace()); err != nil {
			return fail(err)
		}
		// The sink is a loopback address: the forwarder reaches it only
		// through its exact ip:port on the allow-list.
		e.vars = append(e.vars, "AUDITTRAIL_FORWARD_ALLOWED_TARGETS="+strings.TrimPrefix(e.sink.url, "http://"))
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = e.configureForwarding(cctx)
		cancel()
		if err != nil {
			return fail(fmt.Errorf("configure forwarding: %w", err))
		}
		procs = append(procs, "forwarder")
	}
	for _, name := range procs {
		if err := e.start(name); err != nil {
			return fail(err)
		}
	}

	loadCtx, stopLoad := context.WithTimeout(ctx, o.load)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Go(func() { e.steadyLoad(loadCtx, scenario == "poison") })

	select {
	case <-time.After(o.faultAt):
	case <-loadCtx.Done():
	}
	// A sink fault must meet a forwarder that is delivering: wait for the
	// first acknowledged event (the forwarder joins its group meanwhile).
	for e.sink != nil && !e.sink.delivering() && loadCtx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	if e.sink != nil && !e.sink.delivering() {
		wg.Wait()
		return fail(errors.New("the forwarder delivered nothing while the load ran"))
	}
	faultStart := time.Now()
	if err := e.inject(ctx, scenario); err != nil {
		stopLoad()
		wg.Wait()
		return fail(fmt.Errorf("inject %s: %w", scenario, err))
	}
	faultCleared := time.Now()
	// Recovery: how long after the fault until every event accepted before
	// it was cleared is stored (sink scenarios: acknowledged by the sink,
	// when forwardable).
	e.mu.Lock()
	before := maps(e.accepted)
	if e.sink != nil {
		before = maps(e.forwardable)
	}
	e.mu.Unlock()
	recovered := make(chan time.Duration, 1)
	go func() {
		deadline := time.Now().Add(o.settle)
		poll := 200 * time.Millisecond // a ClickHouse query
		if e.sink != nil {
			poll = 100 * time.Millisecond
		}
		for time.Now().Before(deadline) {
			var done bool
			if e.sink != nil {
				done = e.sink.covers(before)
			} else {
				got, err := e.visible(ctx)
				done = err == nil && covers(got, before)
			}
			if done {
				recovered <- time.Since(faultCleared)
				return
			}
			time.Sleep(poll)
		}
		recovered <- -1
	}()
	wg.Wait()

	// Wait until every accepted event is stored, and every forwardable
	// one acknowledged by the sink (or settle runs out).
	e.mu.Lock()
	want := maps(e.accepted)
	forwardable := maps(e.forwardable)
	poison := e.poison
	e.mu.Unlock()
	deadline := time.Now().Add(o.settle)
	var got map[string]int
	for {
		got, err = e.visible(ctx)
		if err == nil && len(got) >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for e.sink != nil && !e.sink.covers(forwardable) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	res.Recovery = <-recovered
	if err != nil {
		return fail(err)
	}
	res.Accepted, res.Stored, res.Poison = len(want), len(got), poison
	e.mu.Lock()
	sent := maps(e.sent)
	e.mu.Unlock()
	for id, n := range got {
		// A stored id that was posted but never answered (the gateway
		// published it, the response was lost) is at-least-once delivery,
		// not an error; an id that was never posted is.
		if !want[id] && !sent[id] {
			res.Unexpected++
		}
		if n > 1 {
			res.Duplicates++
		}
	}
	for id := range want {
		if got[id] == 0 {
			res.Lost++
		}
	}
	res.DeadLetter, err = e.deadLetters(ctx, e.dlq, poison)
	if err != nil {
		return fail(err)
	}
	if e.sink != nil {
		res.Forwarding, err = e.forwarded(ctx, sent, forwardable, faultStart, faultCleared)
		if err != nil {
			return fail(err)
		}
	}
	if !res.ok() {
		return fail(errors.New("mismatch"))
	}
	return res
}

// slowWorkspace is the workspace the sink-slow-workspace target is slow
// for: the busiest of the load, whose slow requests are nearly always in
// flight, so that the other workspaces of its partition would wait behind
// them if deliveries were serialized per partition.
func slowWorkspace() string {
	g, _ := loadgen.New(loadConfig(1), time.Now)
	return g.Workspace(0)
}

// configureForwarding turns forwarding on for every workspace of the load,
// to the sink, with no tracking plan and no filters: it writes the settings
// records that PUT /v1/workspaces/{ws}/forwarding writes, to the scenario's
// settings topic, before the forwarder starts (a forwarder loads every
// setting before it reads an event).
func (e *env) configureForwarding(ctx context.Context) error {
	if err := kvtopic.Ensure(ctx, []kgo.Opt{kgo.SeedBrokers("127.0.0.1:9092")}, e.settings); err != nil {
		return err
	}
	g, err := loadgen.New(loadConfig(1), time.Now)
	if err != nil {
		return err
	}
	e.workspaces = map[string]*forward.Workspace{}
	var recs []*kgo.Record
	now := time.Now().UTC()
	for i := range loadWorkspaces {
		ws := g.Workspace(i)
		f := trackingplan.Forwarding{Enabled: true, Target: trackingplan.Target{URL: e.sink.url, WriteKey: writeKeyPrefix + ws}}
		if err := f.Validate(); err != nil {
			return err
		}
		settings, err := json.Marshal(f)
		if err != nil {
			return err
		}
		rec, err := json.Marshal(trackingplan.Record{WorkspaceID: ws, Kind: trackingplan.KindForwarding,
			UpdatedAt: now, UpdatedBy: "drill", Settings: settings})
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: e.settings, Key: []byte(trackingplan.Key(ws, trackingplan.KindForwarding)), Value: rec})
		e.workspaces[ws] = &forward.Workspace{ID: ws, Forwarding: f}
	}
	return e.producer.ProduceSync(ctx, recs...).FirstErr()
}

// isForwardable runs ev through its workspace's pipeline the way the
// forwarder does: an event it would drop or dead-letter does not count.
func (e *env) isForwardable(ev *event.Event) bool {
	ws := e.workspaces[ev.WorkspaceID]
	if ws == nil || !ws.Forwarding.Enabled {
		return false
	}
	out, err := forward.Process(ws, ev)
	return err == nil && out.Dropped == ""
}

// forwarded compares what the sink acknowledged with the forwardable
// accepted events, counts the forwarder's dead letters and runs the
// fault's own checks.
func (e *env) forwarded(ctx context.Context, sent, want map[string]bool, faultStart, faultCleared time.Time) (*forwarding, error) {
	got, firstAt := e.sink.snapshot()
	f := &forwarding{Forwardable: len(want), Unique: len(got), Fault: e.sink.describe()}
	for id, n := range got {
		f.Deliveries += n
		if !sent[id] {
			f.Unexpected++
		}
	}
	for id := range want {
		if got[id] == 0 {
			f.Missing++
		}
	}
	var err error
	if f.DeadLetters, err = e.deadLetters(ctx, e.fwdDLQ, 0); err != nil {
		return f, err
	}
	if err := e.sink.check(); err != nil {
		return f, err
	}
	if e.sink.kind == faultSlow {
		e.mu.Lock()
		posted := make(map[string]time.Time, len(e.postedAt))
		for k, v := range e.postedAt {
			posted[k] = v
		}
		e.mu.Unlock()
		desc, err := e.headOfLine(posted, firstAt, faultStart, faultCleared)
		f.Fault += "; " + desc
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// headOfLine checks the forwarder's promise that a slow target holds only
// its own workspace's queue: for the events posted while the slow
// workspace's requests took sinkSlowDelay, the other workspaces of its
// partition must have been acknowledged with a p99 latency (post to
// acknowledged) under half that delay.
func (e *env) headOfLine(posted, firstAt map[string]time.Time, from, to time.Time) (string, error) {
	slow := e.sink.slowWS
	part := emitter.Partitioner().ForTopic(e.topic)
	partition := func(ws string) int { return part.Partition(&kgo.Record{Key: []byte(ws)}, drillPartitions) }
	slowPart := partition(slow)
	var slowLat, sameLat, otherLat []time.Duration
	for id, t := range posted {
		at, ok := firstAt[id]
		if !ok || t.Before(from) || !t.Before(to) {
			continue
		}
		ws, _, _ := strings.Cut(id, "/")
		d := max(at.Sub(t), 0)
		switch {
		case ws == slow:
			slowLat = append(slowLat, d)
		case partition(ws) == slowPart:
			sameLat = append(sameLat, d)
		default:
			otherLat = append(otherLat, d)
		}
	}
	p99 := func(ds []time.Duration) time.Duration { return percentile(ds, 99) }
	desc := fmt.Sprintf("p99 post to acknowledged during it: %s %s, other workspaces of its partition %s (%d events), other partitions %s",
		slow, ms(p99(slowLat)), ms(p99(sameLat)), len(sameLat), ms(p99(otherLat)))
	if len(sameLat) == 0 {
		return desc, fmt.Errorf("no event of another workspace on %s's partition was posted during the fault", slow)
	}
	if p99(sameLat) >= sinkSlowDelay/2 {
		return desc, fmt.Errorf("head-of-line blocking: the other workspaces of %s's partition waited (p99 %s)", slow, ms(p99(sameLat)))
	}
	return desc, nil
}

func covers(got map[string]int, want map[string]bool) bool {
	for id := range want {
		if got[id] == 0 {
			return false
		}
	}
	return true
}

func maps(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (e *env) start(name string) error {
	var logs bytes.Buffer
	cmd := exec.Command(e.bins[name])
	cmd.Env = append(os.Environ(), e.vars...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return err
	}
	e.procs[name], e.logs[name] = cmd, &logs
	if err := proctest.WaitReady(context.Background(), e.addrs[name], 60*time.Second, nil); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (e *env) stop(name string, sig syscall.Signal) {
	cmd := e.procs[name]
	if cmd == nil || cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (e *env) cleanup() {
	e.stop("ingest", syscall.SIGTERM)
	e.stop("writer", syscall.SIGTERM)
	e.stop("forwarder", syscall.SIGTERM)
	if e.sink != nil {
		e.sink.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.chConn != nil {
		_ = e.chConn.Exec(ctx, "DROP DATABASE IF EXISTS "+e.db)
		e.chConn.Close()
	}
	if e.producer != nil {
		adm := kadm.NewClient(e.producer)
		_, _ = adm.DeleteTopics(ctx, e.topic, e.dlq)
		if e.sink != nil {
			_, _ = adm.DeleteTopics(ctx, e.settings, e.fwdDLQ)
			_, _ = adm.DeleteGroup(ctx, e.fwdGroup)
		}
		e.producer.Close()
	}
}

// steadyLoad posts batches of 50 realistic events at o.rate through the
// gateway and records the ids of every 202. With poison, 1% of the load is
// published straight to Kafka as poison records.
func (e *env) steadyLoad(ctx context.Context, poison bool) {
	g, _ := loadgen.New(loadConfig(uint64(time.Now().UnixNano())), time.Now)
	const batch = 50
	interval := time.Second * batch / time.Duration(e.o.rate)
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		events := make([]event.Event, batch)
		for i := range events {
			events[i] = g.Next()
		}
		body, _ := json.Marshal(map[string]any{"batch": events})
		sends := 1
		if e.sendTwice {
			sends = 2
		}
		postedAt := time.Now()
		e.mu.Lock()
		for i := range events {
			k := events[i].WorkspaceID + "/" + events[i].ID
			e.sent[k] = true
			if e.postedAt != nil {
				e.postedAt[k] = postedAt
			}
		}
		e.mu.Unlock()
		for range sends {
			// A request in flight when the load stops still gets its answer,
			// and a failed one is retried with the same ids, as a producer
			// does; the load's end only stops new batches.
			var ids []string
			var err error
			for attempt := 0; attempt < 3; attempt++ {
				if ids, err = drillkit.Post(context.WithoutCancel(ctx), client, "http://"+e.addrs["ingest"]+"/v1/events", ingestToken, body); err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				continue // never confirmed: counted as sent, not as accepted
			}
			var forwardable []bool
			if e.sink != nil {
				forwardable = make([]bool, len(ids))
				for i := range ids {
					forwardable[i] = e.isForwardable(&events[i])
				}
			}
			e.mu.Lock()
			for i, id := range ids { // ids come back in batch order
				k := events[i].WorkspaceID + "/" + id
				e.accepted[k] = true
				if forwardable != nil && forwardable[i] {
					e.forwardable[k] = true
				}
			}
			e.mu.Unlock()
		}
		if poison && n%2 == 0 {
			// one poison record per 100 events
			recs := []*kgo.Record{{Key: []byte("ws_poison"), Value: []byte(fmt.Sprintf(`{"broken": %d`, n))}}
			if err := e.producer.ProduceSync(ctx, recs...).FirstErr(); err == nil {
				e.mu.Lock()
				e.poison++
				e.mu.Unlock()
			}
		}
	}
}

func (e *env) services(fn string) error {
	cmd := exec.Command("bash", "-c", ". scripts/lib/services.sh && "+fn)
	cmd.Dir, cmd.Stdout, cmd.Stderr = e.o.root, os.Stderr, os.Stderr
	return cmd.Run()
}

func (e *env) inject(ctx context.Context, scenario string) error {
	switch scenario {
	case "kill-writer":
		e.stop("writer", syscall.SIGKILL)
		return e.start("writer")
	case "clickhouse-down":
		if err := e.services("clickhouse_stop"); err != nil {
			return err
		}
		time.Sleep(e.o.downFor)
		return e.services("clickhouse_start")
	case "kafka-restart":
		if err := e.services("kafka_stop"); err != nil {
			return err
		}
		return e.services("kafka_start")
	}
	if e.sink != nil {
		e.sink.setFault(true)
		time.Sleep(e.o.sinkFor)
		e.sink.setFault(false)
	}
	return nil // poison and duplicates are in the load itself
}

// visible reads the stored ids as the API does.
func (e *env) visible(ctx context.Context) (map[string]int, error) {
	return drillkit.Visible(ctx, e.chConn, e.db)
}

// deadLetters counts the records in a dead-letter topic, waiting up to
// 30 s for want of them.
func (e *env) deadLetters(ctx context.Context, topic string, want int) (int, error) {
	adm := kadm.NewClient(e.producer)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return 0, err
		}
		n := 0
		ends.Each(func(o kadm.ListedOffset) { n += int(o.Offset) })
		if n >= want || time.Now().After(deadline) {
			return n, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}
