package main

// Measuring rates fairly: every side of a comparison runs the same number
// of times, the sides taking turns, each run from emptied tables and
// settled merges; a consumer's rate runs from its partitions' assignment to
// the last row stored, whichever consumer it is.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// side is one side of a comparison: a rate measured from empty tables (in
// the bench database).
type side struct {
	name     string // short, in results.json's runs: "client", "writer", "engine"
	what     string // for the log
	settings string // what it ran with, kept with every run
	rows     int
	tables   []string // emptied before every run
	measure  func(run int) (float64, error)
}

// outcome is every run of one side, in order.
type outcome struct {
	rates []float64 // rows per second
	cpu   []float64 // CPU seconds per million rows (see cpuUse)
	// proc and server split cpu: the bench process with its children
	// (the writer, or clickhouse-client) and the ClickHouse server.
	proc, server []float64
}

func (o outcome) median() float64    { return median(o.rates) }
func (o outcome) best() float64      { return slices.Max(o.rates) }
func (o outcome) medianCPU() float64 { return median(o.cpu) }

// Run is one measured run, as results.json keeps it.
type Run struct {
	Round         int     `json:"round"`
	Side          string  `json:"side"`
	Rate          float64 `json:"rate"`
	CPUPerMillion float64 `json:"cpu_s_per_million"`
	// ProcessCPUPerMillion is the bench process's with its children (the
	// writer, or clickhouse-client); ServerCPUPerMillion ClickHouse's.
	ProcessCPUPerMillion float64 `json:"process_cpu_s_per_million"`
	ServerCPUPerMillion  float64 `json:"server_cpu_s_per_million"`
	Settings             string  `json:"settings"`
}

// interleave runs each side rounds times, taking turns: round r starts
// with side r mod len(sides), so no side always follows the same one, and
// a slow spell of the shared machine falls on every side instead of one.
// Before each run it empties the side's tables, collects this process's
// garbage and waits for ClickHouse's merges to settle, so no run pays for
// the previous one.
func interleave(ctx context.Context, e *env, rounds int, sides ...side) ([]outcome, []Run, error) {
	out := make([]outcome, len(sides))
	var runs []Run
	for round := 1; round <= rounds; round++ {
		for k := range sides {
			i := (round - 1 + k) % len(sides)
			s := sides[i]
			rate, used, err := e.measureOnce(ctx, s, round)
			if err != nil {
				return nil, nil, fmt.Errorf("%s, run %d: %w", s.what, round, err)
			}
			logf("%s, run %d of %d: %.0f/s", s.what, round, rounds, rate)
			cpu, proc, server := used.perMillion(s.rows), used.procPerMillion(s.rows), used.serverPerMillion(s.rows)
			o := &out[i]
			o.rates, o.cpu = append(o.rates, rate), append(o.cpu, cpu)
			o.proc, o.server = append(o.proc, proc), append(o.server, server)
			runs = append(runs, Run{Round: round, Side: s.name, Rate: rate, CPUPerMillion: cpu,
				ProcessCPUPerMillion: proc, ServerCPUPerMillion: server, Settings: s.settings})
		}
	}
	return out, runs, nil
}

// measureOnce prepares and runs one measurement of s, returning its rate
// and the CPU time it cost.
func (e *env) measureOnce(ctx context.Context, s side, run int) (float64, cpuUse, error) {
	for _, t := range s.tables {
		if err := e.Conn.Exec(ctx, "TRUNCATE TABLE "+e.DB+"."+t); err != nil {
			return 0, cpuUse{}, err
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	quiesce(ctx, e.Conn)
	before := cpuNow()
	rate, err := s.measure(run)
	if err != nil {
		return 0, cpuUse{}, err
	}
	used := cpuNow().since(before)
	logf("  %s", used.String(s.rows))
	return rate, used, nil
}

// median of v (the mean of the middle two for an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianRatio is the median over rounds of a's rate over b's in the same
// round: the ratio of paired runs.
func medianRatio(a, b outcome) float64 {
	r := make([]float64, min(len(a.rates), len(b.rates)))
	for i := range r {
		r[i] = a.rates[i] / b.rates[i]
	}
	return median(r)
}

// quiesce waits (up to 30 s) until ClickHouse runs no merges, so one
// measurement does not pay for the background work of the previous one.
func quiesce(ctx context.Context, conn driver.Conn) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&n); err != nil || n == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stored is how many rows the table's parts hold: what count() returns
// for a table without repeated rows, read from the parts' metadata.
// ClickHouse 18.16 answers count() by reading a column, and polling that
// every 10 ms would cost the server CPU in the middle of the measurement.
func stored(ctx context.Context, conn driver.Conn, db, table string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT toUInt64(sum(rows)) FROM system.parts WHERE active AND database = ? AND table = ?", db, table).Scan(&n)
	return n, err
}

// untilStored is the rate of a consumer storing n rows into table: from
// the first poll (every 10 ms) at which assigned reports that its group
// gave it partitions (so the group join, seconds that any consumer pays
// once, is not counted) to the first poll at which the table holds n rows,
// so every batch's whole work is. The writer and the Kafka engine are
// timed by this one function.
func untilStored(ctx context.Context, e *env, table string, n int, assigned func() bool) (float64, error) {
	start := time.Now()
	deadline := start.Add(10 * time.Minute)
	var assignedAt, firstAt time.Time
	for {
		if assignedAt.IsZero() && assigned() {
			assignedAt = time.Now()
		}
		c, err := stored(ctx, e.Conn, e.DB, table)
		if err != nil {
			return 0, err
		}
		if firstAt.IsZero() && c > 0 {
			firstAt = time.Now()
		}
		if int(c) >= n {
			if assignedAt.IsZero() {
				return 0, errors.New("stored the rows without the group reporting an assignment")
			}
			logf("  partitions assigned %s after start, first rows stored %s after that; %.0f rows/s including the start",
				assignedAt.Sub(start).Round(time.Millisecond), firstAt.Sub(assignedAt).Round(time.Millisecond),
				float64(n)/time.Since(start).Seconds())
			return float64(n) / time.Since(assignedAt).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("stored %d of %d rows into %s in 10 minutes", c, n, table)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writerIngest runs a writer in a new group until it stored n events,
// timed by untilStored.
func writerIngest(ctx context.Context, e *env, topic string, n int, group string) (float64, error) {
	w, err := e.StartWriter(ctx, e.Conn, e.DB, topic, group, writerBatchAge)
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	return untilStored(ctx, e, migrations.Table, n, func() bool { return w.Gauge("audittrail_writer_assigned_partitions") > 0 })
}
