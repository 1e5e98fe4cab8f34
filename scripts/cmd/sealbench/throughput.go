package main

// The writer's throughput with and without the sealer beside it.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/schemas/migrations"
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
	// SealerReads and SealerReadRows are the sealer's lookups of what the
	// writer stored (the offsets record, and the read-back from the
	// events table for records it does not hold) and the rows the server
	// read for them, from system.query_log (sealer runs only).
	SealerReads    uint64 `json:"sealer_reads,omitempty"`
	SealerReadRows uint64 `json:"sealer_read_rows,omitempty"`
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
	// The writer records its offsets for the sealer only when the
	// integrity log is on: the run without the sealer does not pay for it.
	w, err := e.startWriter(ctx, db, topic, group, sealing && e.offsets)
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
		run.SealerReads, run.SealerReadRows = e.sealerReads(ctx, db)
	}
	return run, nil
}

// startWriter runs the bench's writer, recording its offsets or not
// (config.WriterRecordOffsets, which benchkit.StartWriter reads).
func (e *env) startWriter(ctx context.Context, db, topic, group string, recordOffsets bool) (*benchkit.Writer, error) {
	name := config.WriterRecordOffsets.Name
	was, set := os.LookupEnv(name)
	defer func() {
		if set {
			_ = os.Setenv(name, was)
		} else {
			_ = os.Unsetenv(name)
		}
	}()
	if err := os.Setenv(name, strconv.FormatBool(recordOffsets)); err != nil {
		return nil, err
	}
	return e.StartWriter(ctx, e.Conn, db, topic, group, 0)
}

// sealerReads returns how many lookups of what the writer stored the
// sealer made into db (its queries are logged: startSealer) and the rows
// the server read for them; zeros when system.query_log cannot be read.
func (e *env) sealerReads(ctx context.Context, db string) (queries, rows uint64) {
	// The server logs a query's end once its client closed it, and
	// flushes its logs on request: two flushes a moment apart catch the
	// last round's.
	for range 2 {
		if err := e.Conn.Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
			return 0, 0
		}
		time.Sleep(time.Second)
	}
	err := e.Conn.QueryRow(ctx, `SELECT count(), sum(read_rows) FROM system.query_log
WHERE type = 2 AND event_date >= yesterday() AND (position(query, ?) > 0 OR position(query, ?) > 0)`,
		"FROM "+db+"."+migrations.OffsetsTable+" WHERE", "FROM "+db+"."+migrations.Table+"\nPREWHERE").Scan(&queries, &rows)
	if err != nil {
		return 0, 0
	}
	return queries, rows
}
