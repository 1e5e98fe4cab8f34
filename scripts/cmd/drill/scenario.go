package main

// A scenario from start to verdict: its own slice of the servers and
// processes, the load, the fault, the recovery and the count.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

func run(ctx context.Context, o options) ([]result, error) {
	pkgs := []string{"consumers/cmd/writer", "producers/cmd/ingest"}
	if slices.ContainsFunc(o.scenarios, func(s string) bool { return sinkFaults[s] != "" }) {
		pkgs = append(pkgs, "consumers/cmd/forwarder")
	}
	if slices.Contains(o.scenarios, tamperScenario) {
		pkgs = append(pkgs, "consumers/cmd/sealer", "query-api/cmd/verify")
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
	addrs                 map[string]string // process name -> health address (under mu: a restart changes it)
	vars                  []string
	procs                 map[string]*proctest.Process
	bins                  map[string]string
	accepted              map[string]bool // ids the gateway answered 202 for
	sent                  map[string]bool // every id posted, answered or not
	mu                    sync.Mutex
	poison                int
	servers               drillkit.Servers
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
	if scenario == tamperScenario {
		return runTamper(ctx, o, bins)
	}
	res.Scenario = scenario
	e := newEnv(o, bins, scenario)
	defer e.cleanup()
	fail := func(err error) result {
		res.Err = err.Error()
		e.printLogs()
		return res
	}
	if err := e.setUp(ctx, sinkFaults[scenario]); err != nil {
		return fail(err)
	}
	faultStart, faultCleared, recovered, err := e.loadAndFault(ctx, scenario)
	if err != nil {
		return fail(err)
	}
	got, err := e.settle(ctx)
	res.Recovery = <-recovered
	if err != nil {
		return fail(err)
	}
	if err := e.tally(ctx, &res, got, faultStart, faultCleared); err != nil {
		return fail(err)
	}
	if !res.ok() {
		return fail(errors.New("mismatch"))
	}
	return res
}

// newEnv names the scenario's topics, group, database and listen
// addresses, and the environment its processes run with.
func newEnv(o options, bins map[string]string, scenario string) *env {
	sfx := fmt.Sprintf("%x", time.Now().UnixNano())
	e := &env{o: o, sfx: sfx, topic: "drill-events-" + sfx, dlq: "drill-dlq-" + sfx, group: "drill-writer-" + sfx,
		db: "drill_" + sfx, addrs: map[string]string{}, bins: bins,
		procs: map[string]*proctest.Process{}, accepted: map[string]bool{}, sent: map[string]bool{},
		sendTwice: scenario == "duplicates"}
	e.vars = []string{
		"AUDITTRAIL_KAFKA_TOPIC=" + e.topic, "AUDITTRAIL_WRITER_DLQ_TOPIC=" + e.dlq,
		"AUDITTRAIL_WRITER_GROUP=" + e.group, "AUDITTRAIL_CLICKHOUSE_DATABASE=" + e.db,
		"AUDITTRAIL_INGEST_ADDR=" + proctest.AnyPort, "AUDITTRAIL_WRITER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken, fmt.Sprintf("AUDITTRAIL_KAFKA_PARTITIONS=%d", drillPartitions),
		"AUDITTRAIL_WRITER_INSTANCE_ID=drill-writer-1",
	}
	if sinkFaults[scenario] != "" {
		e.settings, e.fwdDLQ, e.fwdGroup = "drill-settings-"+sfx, "drill-fdlq-"+sfx, "drill-forwarder-"+sfx
		e.forwardable, e.postedAt = map[string]bool{}, map[string]time.Time{}
		e.vars = append(e.vars,
			"AUDITTRAIL_SETTINGS_TOPIC="+e.settings, "AUDITTRAIL_FORWARDER_DLQ_TOPIC="+e.fwdDLQ,
			"AUDITTRAIL_FORWARDER_GROUP="+e.fwdGroup, "AUDITTRAIL_FORWARDER_ADDR="+proctest.AnyPort,
			"AUDITTRAIL_FORWARDER_REQUEST_TIMEOUT="+sinkTimeout.String())
	}
	return e
}

// setUp connects to the servers the services' configuration names, starts
// the sink target of a sink fault and configures forwarding to it, and
// starts the processes.
func (e *env) setUp(ctx context.Context, fault string) error {
	var err error
	if e.servers, err = drillkit.ServersFromEnv(); err != nil {
		return err
	}
	chc := e.servers.ClickHouse
	chc.Database, chc.DialTimeout, chc.ReadTimeout, chc.MaxOpenConns = e.db, 2*time.Second, time.Minute, 4
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	e.chConn, err = chconn.Open(cctx, chc)
	cancel()
	if err != nil {
		return err
	}
	e.producer, err = kgo.NewClient(append(e.servers.Kafka.Options(), kgo.DefaultProduceTopic(e.topic))...)
	if err != nil {
		return err
	}
	procs := []string{"writer", "ingest"}
	if fault != "" {
		if e.sink, err = newSink(fault, slowWorkspace()); err != nil {
			return err
		}
		// The sink is a loopback address: the forwarder reaches it only
		// through its exact ip:port on the allow-list.
		e.vars = append(e.vars, "AUDITTRAIL_FORWARD_ALLOWED_TARGETS="+strings.TrimPrefix(e.sink.url, "http://"))
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = e.configureForwarding(cctx)
		cancel()
		if err != nil {
			return fmt.Errorf("configure forwarding: %w", err)
		}
		procs = append(procs, "forwarder")
	}
	for _, name := range procs {
		if err := e.start(name); err != nil {
			return err
		}
	}
	return nil
}

// loadAndFault runs the steady load for o.load and injects the fault at
// o.faultAt (a sink fault once the forwarder delivers). It returns when
// the load ended, with when the fault started and was cleared, and the
// recovery time to come (-1: not within o.settle).
func (e *env) loadAndFault(ctx context.Context, scenario string) (start, cleared time.Time, recovered <-chan time.Duration, err error) {
	loadCtx, stopLoad := context.WithTimeout(ctx, e.o.load)
	defer stopLoad()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { e.steadyLoad(loadCtx, scenario == "poison") })

	select {
	case <-time.After(e.o.faultAt):
	case <-loadCtx.Done():
	}
	// A sink fault must meet a forwarder that is delivering: wait for the
	// first acknowledged event (the forwarder joins its group meanwhile).
	for e.sink != nil && !e.sink.delivering() && loadCtx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	if e.sink != nil && !e.sink.delivering() {
		return start, cleared, nil, errors.New("the forwarder delivered nothing while the load ran")
	}
	start = time.Now()
	if err := e.inject(ctx, scenario); err != nil {
		stopLoad()
		return start, cleared, nil, fmt.Errorf("inject %s: %w", scenario, err)
	}
	cleared = time.Now()
	return start, cleared, e.recovery(ctx, cleared), nil
}

// recovery measures how long after the fault was cleared every event
// accepted before then is stored (sink scenarios: acknowledged by the
// sink, when forwardable); -1 when not within o.settle.
func (e *env) recovery(ctx context.Context, cleared time.Time) <-chan time.Duration {
	e.mu.Lock()
	before := maps(e.accepted)
	if e.sink != nil {
		before = maps(e.forwardable)
	}
	e.mu.Unlock()
	recovered := make(chan time.Duration, 1)
	go func() {
		deadline := time.Now().Add(e.o.settle)
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
				recovered <- time.Since(cleared)
				return
			}
			time.Sleep(poll)
		}
		recovered <- -1
	}()
	return recovered
}

// settle waits until every accepted event is stored, and every
// forwardable one acknowledged by the sink (or o.settle runs out), and
// returns the stored ids.
func (e *env) settle(ctx context.Context) (map[string]int, error) {
	e.mu.Lock()
	want := len(e.accepted)
	forwardable := maps(e.forwardable)
	e.mu.Unlock()
	deadline := time.Now().Add(e.o.settle)
	var got map[string]int
	var err error
	for {
		got, err = e.visible(ctx)
		if err == nil && len(got) >= want {
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
	return got, err
}

// tally compares the stored ids with those accepted and sent, counts the
// dead letters and, in sink scenarios, what the target received.
func (e *env) tally(ctx context.Context, res *result, got map[string]int, faultStart, faultCleared time.Time) error {
	e.mu.Lock()
	want, sent, forwardable := maps(e.accepted), maps(e.sent), maps(e.forwardable)
	poison := e.poison
	e.mu.Unlock()
	res.Accepted, res.Stored, res.Poison = len(want), len(got), poison
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
	var err error
	if res.DeadLetter, err = e.deadLetters(ctx, e.dlq, poison); err != nil {
		return err
	}
	if e.sink != nil {
		res.Forwarding, err = e.forwarded(ctx, sent, forwardable, faultStart, faultCleared)
	}
	return err
}
