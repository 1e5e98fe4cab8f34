// Package main is the drillcluster command: the multi-node drill. On a local
// three-node Kafka cluster (scripts/lib/cluster.sh; replication factor 3,
// min.insync.replicas 2) it runs three writer instances in one group, two
// forwarders in another, one read API and one ingest gateway, all built
// from this repository, against the shared ClickHouse (a database of its
// own). Under steady load through the gateway, with client-assigned ids, it
// SIGKILLs one broker (the writer group's coordinator) and one writer,
// brings both back, and then checks by counting:
//
//   - the ids the running read API shows equal the ids the gateway accepted
//     (ids posted but never answered may be stored; no other id may be);
//   - no id is shown twice;
//   - the forwarding sink received every accepted event of the workspaces
//     with forwarding on at least once, and nothing of the others;
//   - the writer group rebalanced: the survivors took the killed instance's
//     partitions, and gave them back when it returned.
//
// It prints a table of figures (accepted, stored, lost, duplicates,
// forwarded, failover and recovery times, throughput) and exits 1 when a
// check fails. -quick (scripts/test) keeps the run near two minutes; -measure
// measures throughput per partition and per writer instance on the cluster
// instead (deploy/CAPACITY.md).
//
// Nodes the drill started are stopped at the end; nodes that were already
// running are left running.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

const (
	loadWorkspaces = 50 // ws_0000 ... ws_0049, Zipf-skewed
	writers        = 3
	forwarders     = 2
	jwtSecret      = "drill-cluster-jwt-secret-0123456789abcdef"
	writeKey       = "drill-cluster-write-key-1234"
	sessionTimeout = 6 * time.Second // the writers' group session (the broker's minimum)
)

type options struct {
	quick, measure bool
	rate           int
	partitions     int
	load           time.Duration // how long load runs
	faultAt        time.Duration // when the broker and the writer are killed
	brokerDown     time.Duration // how long the broker stays down (from the kill)
	writerDown     time.Duration // how long the writer stays down at least
	settle         time.Duration // longest wait for everything to be stored and forwarded
	events         int           // -measure: events per measurement
	rounds         int           // -measure: rounds of every measurement
	root           string
}

func main() { os.Exit(run()) }

// run runs the drill or the measurements and returns the exit code.
func run() int {
	o, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "drill-cluster:", err)
		return 2
	}
	// Ctrl-C or SIGTERM end the run early; the processes, topics, database
	// and the nodes it started are still cleaned up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.measure {
		rep, err := measure(ctx, o)
		if rep != nil {
			rep.print(os.Stdout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "drill-cluster:", err)
			return 1
		}
		return 0
	}
	rep, err := runDrill(ctx, o)
	rep.print(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drill-cluster:", err)
		return 1
	}
	if !rep.ok() {
		fmt.Fprintln(os.Stderr, "drill-cluster: FAILED:", rep.verdict())
		return 1
	}
	fmt.Println("drill-cluster: passed")
	return 0
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("drill-cluster", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short run: 40 s of load, about 80 s with the cluster start (scripts/test)")
	meas := fs.Bool("measure", false, "measure throughput per partition and per writer instance instead of drilling")
	rate := fs.Int("rate", 0, "events per second of steady load (default 1000, 2000 without -quick)")
	events := fs.Int("events", 500000, "-measure: events per measurement")
	rounds := fs.Int("rounds", 3, "-measure: rounds of every measurement (the median is reported)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{quick: *quick, measure: *meas, rate: 2000, partitions: 6, events: *events, rounds: *rounds,
		load: 3 * time.Minute, faultAt: 30 * time.Second, brokerDown: 45 * time.Second, writerDown: 45 * time.Second,
		settle: 3 * time.Minute}
	if o.quick {
		o.rate, o.load, o.faultAt, o.brokerDown, o.writerDown, o.settle = 1000, 40*time.Second, 8*time.Second,
			12*time.Second, 14*time.Second, 90*time.Second
	}
	if *rate != 0 {
		o.rate = *rate
	}
	if o.rate < 100 || o.rate > 50000 {
		return o, errors.New("flag -rate must be 100-50000")
	}
	if o.events < 10000 || o.events > 10_000_000 {
		return o, errors.New("flag -events must be 10000-10000000")
	}
	if o.rounds < 1 || o.rounds > 20 {
		return o, errors.New("flag -rounds must be 1-20")
	}
	root, err := drillkit.Root()
	o.root = root
	return o, err
}
