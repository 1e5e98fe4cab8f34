// Package main is the sealbench command, which measures what the
// integrity log costs the pipeline
// (docs/integrity.md): the writer's throughput with the sealer running
// beside it against the same run without it, and the time from each
// event's producer acknowledgement to its inclusion in a signed checkpoint
// published on the checkpoints topic, at a fixed offered rate.
//
// It runs on the servers the services' configuration names, in its own
// databases and topics, with a writer and a sealer in this process:
//
//	go run ./scripts/cmd/sealbench [-quick] [-events N] [-rate R] [-duration D] [-interval I]
//
// and writes scripts/bench-results/sealbench.{json,md}.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/scripts/internal/benchkit"
)

// Report is what one run measured.
type Report struct {
	Date       string          `json:"date"`
	Quick      bool            `json:"quick"`
	ClickHouse string          `json:"clickhouse"`
	Throughput []ThroughputRun `json:"throughput"`
	// OnOverOff is the median throughput with the sealer over the median
	// without (target >= 0.9).
	OnOverOff float64      `json:"on_over_off"`
	Inclusion InclusionRow `json:"inclusion"`
	// Sample and Audit are the sealer's AUDITTRAIL_SEALER_SAMPLE and
	// AUDITTRAIL_SEALER_AUDIT in the runs.
	Sample int `json:"sample"`
	Audit  int `json:"audit"`
}

func main() {
	quick := flag.Bool("quick", false, "smaller runs: 200,000 events, one round each way, 40 s at the rate with a 10 s interval")
	events := flag.Int("events", 1_000_000, "events per throughput run")
	rounds := flag.Int("rounds", 2, "throughput runs each way (off and on, interleaved)")
	rate := flag.Int("rate", 5000, "offered events per second for the inclusion latency")
	duration := flag.Duration("duration", 3*time.Minute, "how long the rate is offered")
	interval := flag.Duration("interval", config.CheckpointInterval.Default, config.CheckpointInterval.Name+" of the sealer in the inclusion run")
	out := flag.String("out", "scripts/bench-results", "results directory")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each run with the sealer (the whole process: writer and sealer, from the writer's assignment to the last leaf) to FILE.<round>")
	batch := flag.Int("sealer-batch", 0, config.SealerBatchSize.Name+" of the sealer (its default when 0)")
	sample := flag.Int("sample", config.SealerSample.Default, config.SealerSample.Name+" of the sealer: rows of each round read back (0: none)")
	audit := flag.Int("audit", config.SealerAudit.Default, config.SealerAudit.Name+" of the sealer: leaves audited every 10 s (0: none)")
	offsets := flag.Bool("offsets", true, "the writer records its offsets beside the sealer ("+config.WriterRecordOffsets.Name+"); false: the sealer reads every round back from the events table, as before migration 9")
	flag.Parse()
	if *quick {
		*events, *rounds, *duration, *interval = 200_000, 1, 40*time.Second, 10*time.Second
	}
	if *batch < 0 || *batch > config.SealerBatchSize.Max {
		fmt.Fprintf(os.Stderr, "sealbench: -sealer-batch must be 0 (the default) to %d\n", config.SealerBatchSize.Max)
		os.Exit(2)
	}
	for _, err := range []error{config.SealerSample.Check(*sample), config.SealerAudit.Check(*audit)} {
		if err != nil {
			fmt.Fprintln(os.Stderr, "sealbench: -sample/-audit:", err)
			os.Exit(2)
		}
	}
	if *events < 1 || *rounds < 1 || *rate < 1 || *duration <= 0 || *interval <= 0 {
		fmt.Fprintln(os.Stderr, "sealbench: -events, -rounds, -rate, -duration and -interval must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *quick, *events, *rounds, *rate, *duration, *interval, *out, *cpuProfile, sealerSettings{batch: *batch, sample: *sample, audit: *audit, offsets: *offsets}); err != nil {
		fmt.Fprintln(os.Stderr, "sealbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, quick bool, events, rounds, rate int, d, interval time.Duration, out, cpuProfile string, ss sealerSettings) error {
	sfx := fmt.Sprintf("%x", time.Now().UnixNano())
	b, err := benchkit.Open(ctx, "sealbench_"+sfx, 8, 10*time.Minute)
	if err != nil {
		return err
	}
	defer b.Close()
	e := &env{Bench: b, sfx: sfx, cpuProfile: cpuProfile, sealerSettings: ss}
	defer e.close()
	rep := Report{Date: time.Now().UTC().Format(time.RFC3339), Quick: quick, ClickHouse: b.ServerVersion, Sample: ss.sample, Audit: ss.audit}
	var off, on []float64
	for i := range rounds {
		for _, sealing := range []bool{false, true} {
			r, err := e.throughput(ctx, fmt.Sprintf("%d", i), events, sealing)
			if err != nil {
				return fmt.Errorf("throughput (sealer %v): %w", sealing, err)
			}
			fmt.Fprintf(os.Stderr, "sealbench: %d events, sealer %v: %.0f events/s stored (CPU s per million: process %.2f, ClickHouse %.2f; sealer lookups %d reading %d rows)\n",
				events, sealing, r.Rate, r.ProcessCPU, r.ServerCPU, r.SealerReads, r.SealerReadRows)
			rep.Throughput = append(rep.Throughput, r)
			if sealing {
				on = append(on, r.Rate)
			} else {
				off = append(off, r.Rate)
			}
		}
	}
	rep.OnOverOff = median(on) / median(off)
	if rep.Inclusion, err = e.inclusion(ctx, rate, d, interval); err != nil {
		return fmt.Errorf("inclusion: %w", err)
	}
	fmt.Fprintf(os.Stderr, "sealbench: on/off %.3f; inclusion p99 %.1f s (interval %s)\n", rep.OnOverOff, rep.Inclusion.P99s, interval)
	return benchkit.WriteResults(out, "sealbench", rep, markdown(rep))
}
