// Package main is the bench command, which runs the headline ingest
// benchmarks.
//
// It runs them on the real Kafka and ClickHouse servers (those the
// services' configuration names: AUDITTRAIL_KAFKA_BROKERS,
// AUDITTRAIL_CLICKHOUSE_*) and writes the results as JSON, a Markdown table
// and an SVG chart. Every figure is reported with a baseline measured in the
// same run, so ratios compare across machines:
//
//   - writer: events already on Kafka -> stored in ClickHouse, against
//     clickhouse-client inserting the same rows (JSONEachRow) and
//     ClickHouse's own Kafka table engine with a materialized view reading
//     the same events from the earliest offset (best settings of a stated
//     grid), in interleaved rounds from emptied tables: medians of the
//     rounds and of the paired ratios, the best run beside them; plain
//     franz-go producing and consuming the same records;
//   - end-to-end latency per event, from its producer acknowledgement (and
//     from its scheduled send time) to the first read that returns it,
//     under open-loop load at fixed offered rates.
//
// Usage: bench [-quick] [-rounds n] [-writer-only] [-out dir] [-cpuprofile file]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"
)

// minRounds is the least number of interleaved rounds of a full run: the
// throughput ratios are medians of at least this many pairs (issue 18),
// as runs on the shared 2-core machine vary by about 10%.
const minRounds = 7

type options struct {
	quick  bool
	writer bool // only the writer against clickhouse-client
	rows   int
	rounds int // interleaved rounds of the throughput comparison
	rates  []int
	latDur time.Duration
	outDir string
	// cpuProfile, when set, names the CPU profiles of the writer's runs:
	// cpuProfile.1 for round 1 and so on (see benchkit.ProfileRun).
	cpuProfile string
	started    time.Time
}

func main() {
	o := options{started: time.Now()}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "smaller runs (under 5 minutes)")
	fs.BoolVar(&o.writer, "writer-only", false, "only the writer against clickhouse-client (no plain consume, Kafka engine or latency runs); writes its results like a full run, so give it -out to keep those of the last full run")
	fs.StringVar(&o.outDir, "out", "scripts/bench-results", "folder for results.json, results.md and chart.svg")
	fs.IntVar(&o.rounds, "rounds", minRounds, "interleaved rounds of the throughput comparison (each side runs once per round; at least 7 unless -quick or -writer-only)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of each writer run (the whole process while the writer stores the events) to FILE.<round>")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if o.rounds < 1 || (o.rounds < minRounds && !o.quick && !o.writer) {
		fmt.Fprintf(os.Stderr, "bench: flag -rounds: want at least %d in full mode (the headline ratios are medians of at least %d pairs), at least 1 with -quick or -writer-only\n", minRounds, minRounds)
		os.Exit(2)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300) // as consumers/cmd/writer runs
	}
	o.rows, o.rates, o.latDur = 1_000_000, []int{1000, 5000, 10000, 20000}, 30*time.Second
	if o.quick {
		o.rows, o.rates, o.latDur = 200_000, []int{1000, 10000, 20000}, 10*time.Second
	}
	rep, err := run(context.Background(), o)
	if err == nil {
		err = write(o.outDir, rep) // a -writer-only run too: its mode says so
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Print(markdown(rep))
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }
