// Package main is the floodbench command, which measures the cost of a
// flooding workspace.
//
// It measures how much one flooding workspace holds back the other
// workspaces of its partition in the writer, on the real Kafka and
// ClickHouse servers.
//
// It uses the servers the services' configuration names
// (AUDITTRAIL_KAFKA_BROKERS, AUDITTRAIL_CLICKHOUSE_*). N neighbour
// workspaces send at a steady rate each, through the emitter, to a
// one-partition topic (so every workspace shares the partition) while a
// writer runs in this process. In a flood run one more workspace sends at
// -factor times a neighbour's rate; a calm run has no flood. Calm and flood
// runs alternate (calm first, then flood first, ...) and for each run the
// neighbours' latency from the producer's acknowledgement to queryable is
// measured: for the k-th acknowledged event of a workspace, the time until
// ClickHouse counts k rows of that workspace (polled every 20 ms; an upper
// bound, as in scripts/cmd/bench). The command prints the median over runs
// of each mode's p50 and p99 and writes them to -out as floodbench.json and
// floodbench.md. It creates and deletes its own topic, group and database.
//
// Usage: floodbench [-neighbours 8] [-rate 100] [-factor 20] [-duration 20s] [-pairs 3] [-out dir]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"
)

type options struct {
	neighbours int
	rate       int // events/s of each neighbour
	factor     int // the flood's rate over a neighbour's
	duration   time.Duration
	pairs      int
	outDir     string
}

func main() {
	var o options
	fs := flag.NewFlagSet("floodbench", flag.ContinueOnError)
	fs.IntVar(&o.neighbours, "neighbours", 8, "neighbour workspaces")
	fs.IntVar(&o.rate, "rate", 100, "events per second of each neighbour")
	fs.IntVar(&o.factor, "factor", 20, "the flooding workspace's rate over a neighbour's")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of each run")
	fs.IntVar(&o.pairs, "pairs", 3, "calm and flood runs of each (interleaved)")
	fs.StringVar(&o.outDir, "out", "scripts/bench-results", "folder for floodbench.json and floodbench.md")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if o.neighbours < 1 || o.rate < 1 || o.factor < 1 || o.pairs < 1 || o.duration < time.Second {
		fmt.Fprintln(os.Stderr, "floodbench: -neighbours, -rate, -factor and -pairs must be at least 1, -duration at least 1s")
		os.Exit(2)
	}
	rep, err := run(context.Background(), o)
	if err == nil {
		err = write(o.outDir, rep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floodbench:", err)
		os.Exit(1)
	}
	fmt.Print(markdown(rep))
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "floodbench: "+format+"\n", args...) }
