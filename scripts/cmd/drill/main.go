// Package main is the drill command, which runs the fault drills.
//
// Under steady load through the real ingest gateway and writer binaries, on
// the real Kafka and ClickHouse servers (those the services' configuration
// names: AUDITTRAIL_KAFKA_BROKERS, AUDITTRAIL_CLICKHOUSE_*), it injects one
// fault per scenario and then checks, by counting, that the set of event ids
// stored (read the way the API reads) equals the set the gateway accepted,
// that nothing is visible twice, and that the dead-letter topic holds
// exactly the poison. It prints a table and exits 1 when any scenario lost
// or doubled an event.
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
//
// The tamper scenario (which stops no server) also runs the sealer: once
// the load is sealed in a signed checkpoint, it deletes a row, changes a
// row's actor, inserts a forged row, rewrites a row with its leaf and
// stored hashes, and publishes checkpoints signed by another key, smaller
// and forked, and checks that the verify binary names each.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

const ingestToken = "drill-ingest-token-0123456789abcdef"

var allScenarios = []string{"kill-writer", "poison", "duplicates",
	"sink-500", "sink-429", "sink-hang", "sink-slow-workspace", "clickhouse-down", "kafka-restart", tamperScenario}

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
