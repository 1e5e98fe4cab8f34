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
//     clickhouse-client inserting the same rows (JSONEachRow), plain franz-go
//     producing and consuming the same records, and ClickHouse's own Kafka
//     table engine with a materialized view consuming the same events;
//   - end-to-end latency from the producer's acknowledgement to queryable,
//     at fixed rates.
//
// Usage: bench [-quick] [-out dir]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"time"
)

type options struct {
	quick   bool
	writer  bool // only the writer against clickhouse-client
	rows    int
	rates   []int
	latDur  time.Duration
	outDir  string
	started time.Time
}

func main() {
	o := options{started: time.Now()}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "smaller runs (under 5 minutes)")
	fs.BoolVar(&o.writer, "writer-only", false, "only the writer against clickhouse-client (no plain consume, Kafka engine or latency runs)")
	fs.StringVar(&o.outDir, "out", "scripts/bench-results", "folder for results.json, results.md and chart.svg")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: flag -cpuprofile:", err)
			os.Exit(2)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300) // as consumers/cmd/writer runs
	}
	o.rows, o.rates, o.latDur = 1_000_000, []int{1000, 5000, 10000}, 30*time.Second
	if o.quick {
		o.rows, o.rates, o.latDur = 200_000, []int{1000, 5000}, 10*time.Second
	}
	rep, err := run(context.Background(), o)
	if err == nil && !o.writer { // a partial run leaves the results of the last full one
		err = write(o.outDir, rep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	fmt.Print(markdown(rep))
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }
