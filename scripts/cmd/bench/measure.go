package main

// Measuring a rate fairly: each side of a ratio from empty tables and an
// idle server, best of three runs taking turns; the writer's rate from its
// partitions' assignment to the last row stored.

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

// measurement is one side of a comparison: a rate measured from empty
// tables (in the bench database).
type measurement struct {
	what    string
	rows    int
	tables  []string
	measure func(run int) (float64, error)
}

// outcome is what bestOf3 found for one measurement.
type outcome struct {
	best  float64   // the highest rate
	rates []float64 // each run's rate, in order
	cpu   float64   // the lowest CPU seconds per million rows of a run
}

// bestOf3 runs each measurement three times, taking turns (the first, the
// second, ..., then the first again). Taking turns spreads a slow spell of
// the shared machine over both sides of a ratio instead of one. Before each
// run it empties the measurement's tables, collects this process's garbage
// and waits for ClickHouse's merges, so a run does not pay for the
// previous one.
func bestOf3(ctx context.Context, e *env, ms ...measurement) ([]outcome, error) {
	out := make([]outcome, len(ms))
	for run := 1; run <= 3; run++ {
		for i, m := range ms {
			for _, t := range m.tables {
				if err := e.Conn.Exec(ctx, "TRUNCATE TABLE "+e.DB+"."+t); err != nil {
					return nil, err
				}
			}
			runtime.GC()
			debug.FreeOSMemory()
			quiesce(ctx, e.Conn)
			before := cpuNow()
			rate, err := m.measure(run)
			if err != nil {
				return nil, err
			}
			used := cpuNow().since(before)
			logf("%s, run %d of 3: %.0f/s; %s", m.what, run, rate, used.String(m.rows))
			o := &out[i]
			o.best, o.rates = max(o.best, rate), append(o.rates, rate)
			if c := used.perMillion(m.rows); o.cpu == 0 || c < o.cpu {
				o.cpu = c
			}
		}
	}
	return out, nil
}

// medianRatio is the median over runs of a's rate over b's in the same
// round.
func medianRatio(a, b outcome) float64 {
	r := make([]float64, len(a.rates))
	for i := range r {
		r[i] = a.rates[i] / b.rates[i]
	}
	slices.Sort(r)
	return r[len(r)/2]
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

func count(ctx context.Context, conn driver.Conn, table string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n)
	return n, err
}

// writerIngest runs a writer in a new group until it stored n events and
// returns its sustained rate: from the moment the group assigned it the
// partitions (so the group join, seconds that any consumer pays once, is
// not counted) to the last row stored, so every batch's whole work is.
func writerIngest(ctx context.Context, e *env, topic string, n int, group string) (float64, error) {
	start := time.Now()
	w, err := e.StartWriter(ctx, e.Conn, e.DB, topic, group, 250*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	deadline := time.Now().Add(10 * time.Minute)
	var assignedAt time.Time
	for {
		if assignedAt.IsZero() && w.Gauge("audittrail_writer_assigned_partitions") > 0 {
			assignedAt = time.Now()
		}
		c, err := stored(ctx, e.Conn, e.DB, migrations.Table)
		if err != nil {
			return 0, err
		}
		if int(c) >= n {
			if assignedAt.IsZero() {
				return 0, errors.New("writer stored the events without reporting its partitions")
			}
			logf("writer: partitions assigned %s after start; %.0f events/s including the start", assignedAt.Sub(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
			return float64(n) / time.Since(assignedAt).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("writer stored %d of %d in 10 minutes", c, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
