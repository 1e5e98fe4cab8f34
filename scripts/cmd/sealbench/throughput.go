package main

// The writer's throughput with and without the sealer beside it.

import (
	"context"
	"fmt"
	"time"

	"github.com/audittrail/audittrail/scripts/internal/benchkit"
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
	// ProcessCPU and ServerCPU are the CPU seconds per million events of
	// this process (writer and sealer) and of the ClickHouse server while
	// the writer stored them.
	ProcessCPU float64 `json:"process_cpu_s_per_million"`
	ServerCPU  float64 `json:"server_cpu_s_per_million"`
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
	profile := ""
	if sealing && e.cpuProfile != "" {
		profile = e.cpuProfile + "." + tag
	}
	stopProfile, err := benchkit.ProfileRun(profile)
	if err != nil {
		return run, err
	}
	defer stopProfile()
	start, cpu0 := time.Now(), benchkit.CPUNow()
	if err := waitFor(ctx, 30*time.Minute, "all events stored", func() bool {
		return counter(w.Metrics, "audittrail_writer_rows_inserted_total") >= float64(n)
	}); err != nil {
		return run, err
	}
	run.Rate = float64(n) / time.Since(start).Seconds()
	used := benchkit.CPUNow().Since(cpu0)
	run.ProcessCPU, run.ServerCPU = used.ProcPerMillion(n), used.ServerPerMillion(n)
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
