package main

// The writer's throughput with and without the sealer beside it.

import (
	"context"
	"fmt"
	"time"
)

// ThroughputRun is one run: a writer storing Events prefilled events from
// the start of a fresh topic, with or without a sealer beside it.
type ThroughputRun struct {
	Sealer bool    `json:"sealer"`
	Events int     `json:"events"`
	Rate   float64 `json:"rate"` // events stored per second, from assignment to the last insert
	// SealedRate is Events over the time from assignment to the last leaf
	// (sealer runs only).
	SealedRate float64 `json:"sealed_rate,omitempty"`
}

func (e *env) throughput(ctx context.Context, tag string, n int, sealing bool) (ThroughputRun, error) {
	name := fmt.Sprintf("tp%s%v", tag, sealing)
	topic, err := e.topic(ctx, name, false)
	if err != nil {
		return ThroughputRun{}, err
	}
	if err := e.fill(ctx, topic, n, uint64(len(e.topics))); err != nil {
		return ThroughputRun{}, err
	}
	db, err := e.database(ctx, name)
	if err != nil {
		return ThroughputRun{}, err
	}
	defer func() { _ = e.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) }()
	group := "sealbench-writer-" + topic
	run := ThroughputRun{Sealer: sealing, Events: n}
	var s *runningSealer
	if sealing {
		cps, err := e.topic(ctx, name+"cp", true)
		if err != nil {
			return run, err
		}
		if s, err = e.startSealer(ctx, db, topic, cps, group, time.Minute); err != nil {
			return run, err
		}
		defer s.stop()
	}
	w, err := e.StartWriter(ctx, e.Conn, db, topic, group, 0)
	if err != nil {
		return run, err
	}
	defer w.Stop()
	if err := waitFor(ctx, time.Minute, "writer assigned", func() bool { return w.Gauge("audittrail_writer_assigned_partitions") > 0 }); err != nil {
		return run, err
	}
	start := time.Now()
	if err := waitFor(ctx, 30*time.Minute, "all events stored", func() bool {
		return counter(w.Metrics, "audittrail_writer_rows_inserted_total") >= float64(n)
	}); err != nil {
		return run, err
	}
	run.Rate = float64(n) / time.Since(start).Seconds()
	if sealing {
		if err := waitFor(ctx, 30*time.Minute, "all events sealed", func() bool {
			return counter(s.metrics, "audittrail_sealer_leaves_total") >= float64(n)
		}); err != nil {
			return run, err
		}
		run.SealedRate = float64(n) / time.Since(start).Seconds()
	}
	return run, nil
}
