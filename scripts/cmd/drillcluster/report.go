package main

// The drill's report: its figures, the verdict and the printed table.

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// report holds the drill's figures.
type report struct {
	Mode    string
	Started time.Time
	Took    time.Duration // the whole run, cluster start and stop included
	Rate    int
	Load    time.Duration // planned
	LoadRan time.Duration // load start to the last request answered

	ClusterReady time.Duration

	Accepted, Unconfirmed, Retried, Stored, Lost, Duplicates, Unexpected int
	CopiesHidden                                                         int // copies of rows not merged yet, hidden by reads
	RowsReplayed                                                         int // rows inserted more than once (replays after the kill)
	SettingsEvents, SettingsWant                                         int
	APIPages                                                             int

	Forwardable, ForwardedUnique, ForwardDeliveries, ForwardMissing, ForwardStray int

	KilledBroker, KilledWriter   string
	LeaderFailover               time.Duration // kill -> every partition led by a live node
	BrokerDown                   time.Duration // kill -> node ready again
	BrokerRestart                time.Duration // restart command -> node ready
	ISRRestored                  time.Duration // restart -> every partition's ISR complete
	WriterFailover               time.Duration // kill -> survivors own every partition
	WriterDown                   time.Duration // kill -> restart
	WriterRejoin                 time.Duration // restart -> partitions shared evenly again
	Rebalanced                   bool
	CaughtUp                     time.Duration // broker and writer back -> everything accepted before is stored
	StoreSettled                 time.Duration // load end -> everything accepted is stored
	IngestGap                    time.Duration // longest time without a 202, kill to cleared
	StoreP50, StoreP99, StoreMax time.Duration // 202 -> first seen stored (1 s polls)
	LatP50, LatP99, LatMax       time.Duration
	AcceptedRate                 float64

	WritersBefore, WritersDuring, WritersAfter             string
	RowsPerWriter                                          string
	WriterGroupBefore, WriterGroupDuring, WriterGroupAfter string
	ForwarderGroupBefore, ForwarderGroupAfter              string
	Err                                                    string
}

func (r *report) ok() bool { return r.verdict() == "" }

// verdict names every failed check ("" when all pass).
func (r *report) verdict() string {
	var f []string
	if r.Err != "" {
		f = append(f, r.Err)
	}
	if r.Accepted == 0 {
		f = append(f, "nothing accepted")
	}
	if r.Lost > 0 {
		f = append(f, fmt.Sprintf("%d accepted events not shown by the API", r.Lost))
	}
	if r.Duplicates > 0 {
		f = append(f, fmt.Sprintf("%d events shown twice", r.Duplicates))
	}
	if r.Unexpected > 0 {
		f = append(f, fmt.Sprintf("%d events shown that were never sent", r.Unexpected))
	}
	if r.SettingsEvents != r.SettingsWant {
		f = append(f, fmt.Sprintf("%d 'Audit Forwarding Enabled' events shown, want %d", r.SettingsEvents, r.SettingsWant))
	}
	if r.ForwardMissing > 0 {
		f = append(f, fmt.Sprintf("%d forwardable events never reached the sink", r.ForwardMissing))
	}
	if r.ForwardStray > 0 {
		f = append(f, fmt.Sprintf("%d events of workspaces without forwarding reached the sink", r.ForwardStray))
	}
	if !r.Rebalanced && r.Err == "" {
		f = append(f, "no rebalance observed")
	}
	return strings.Join(f, "; ")
}

func sec(d time.Duration) string {
	if d < 0 {
		return "not reached"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func (r *report) print(w io.Writer) {
	row := func(k, v string) { fmt.Fprintf(w, "| %s | %s |\n", k, v) }
	fmt.Fprintf(w, "\nMulti-node drill (%s), %s, %d cores; 3 Kafka nodes (RF 3, min ISR 2), %d writers, %d forwarders, 1 API, 1 gateway\n\n",
		r.Mode, r.Started.Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), writers, forwarders)
	fmt.Fprintln(w, "| figure | value |")
	fmt.Fprintln(w, "|---|---|")
	row("steady load", fmt.Sprintf("%d events/s in batches of %d for %s", r.Rate, loadBatch, r.Load))
	row("events accepted (202)", fmt.Sprint(r.Accepted))
	row("posted, never confirmed (may be stored)", fmt.Sprint(r.Unconfirmed))
	row("requests answered without a 202, then retried with the same ids", fmt.Sprint(r.Retried))
	row("stored, shown by the API", fmt.Sprintf("%d (%d pages)", r.Stored, r.APIPages))
	row("lost (accepted, not shown)", fmt.Sprint(r.Lost))
	row("duplicates visible", fmt.Sprint(r.Duplicates))
	row("shown but never sent", fmt.Sprint(r.Unexpected))
	row("rows inserted again after the kill (replays) / copies not merged yet, hidden by reads", fmt.Sprintf("%d / %d", r.RowsReplayed, r.CopiesHidden))
	row("forwarded: unique / deliveries / forwardable", fmt.Sprintf("%d / %d / %d", r.ForwardedUnique, r.ForwardDeliveries, r.Forwardable))
	row("forwardable never delivered / delivered without forwarding on", fmt.Sprintf("%d / %d", r.ForwardMissing, r.ForwardStray))
	row("broker killed", r.KilledBroker)
	row("writer killed", r.KilledWriter)
	row("partition leaders moved (kill -> all led)", sec(r.LeaderFailover))
	row("broker down (kill -> ready again)", fmt.Sprintf("%s (restart took %s)", sec(r.BrokerDown), sec(r.BrokerRestart)))
	row("ISR complete again (restart -> 3 replicas in sync)", sec(r.ISRRestored))
	row("writer rebalance: survivors own all partitions (kill ->)", sec(r.WriterFailover))
	row("writer down (kill -> restart)", sec(r.WriterDown))
	row("writer rejoin: partitions even again (restart ->)", sec(r.WriterRejoin))
	row("assigned partitions per writer: before / during / after", fmt.Sprintf("%s / %s / %s", r.WritersBefore, r.WritersDuring, r.WritersAfter))
	row("rows inserted per writer (the restarted one counts from its restart)", r.RowsPerWriter)
	row("rebalance observed", yes(r.Rebalanced))
	row("recovery: both back -> everything accepted before is stored", sec(r.CaughtUp))
	row("load end -> all accepted stored", sec(r.StoreSettled))
	row("202 -> stored, p50 / p99 / max (1 s polls)", fmt.Sprintf("%s / %s / %s", sec(r.StoreP50), sec(r.StoreP99), sec(r.StoreMax)))
	row("longest gateway gap without a 202 (during the faults)", sec(r.IngestGap))
	row("gateway latency p50 / p99 / max", fmt.Sprintf("%s / %s / %s", ms(r.LatP50), ms(r.LatP99), ms(r.LatMax)))
	row("throughput accepted (whole load, faults included)", fmt.Sprintf("%.0f events/s", r.AcceptedRate))
	row("run time (cluster start to stop)", fmt.Sprintf("%s (cluster ready and binaries built: %s)", sec(r.Took), sec(r.ClusterReady)))
	verdict := "passed"
	if !r.ok() {
		verdict = "FAILED: " + r.verdict()
	}
	row("result", verdict)
	fmt.Fprintln(w)
	for _, l := range []struct{ k, v string }{
		{"writer group before", r.WriterGroupBefore}, {"writer group during", r.WriterGroupDuring},
		{"writer group after", r.WriterGroupAfter}, {"forwarder group before", r.ForwarderGroupBefore},
		{"forwarder group after", r.ForwarderGroupAfter},
	} {
		if l.v != "" {
			fmt.Fprintf(w, "%s: %s\n", l.k, l.v)
		}
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
