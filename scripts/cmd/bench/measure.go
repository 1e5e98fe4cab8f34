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
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/audittrail/audittrail/scripts/internal/benchkit"
)

// side is one side of a comparison: a rate measured from empty tables (in
// the bench database).
type side struct {
	name     string // short, in results.json's runs: "client", "writer", "engine"
	what     string // for the log
	settings string // what it ran with, kept with every run
	rows     int
	tables   []string // emptied before every run
	// own are the tables the side's own INSERT queries write (none for
	// the Kafka engine, which inserts inside the server): their CPU in
	// system.query_log is the side's query CPU (see queryCPU).
	own     []string
	measure func(run int) (float64, error)
}

// outcome is every run of one side, in order.
type outcome struct {
	rates []float64 // rows per second
	cpu   []float64 // CPU seconds per million rows (see benchkit.CPU)
	// proc and server split cpu: the bench process with its children
	// (the writer, or clickhouse-client) and the ClickHouse server.
	proc, server []float64
	// query is the server CPU of the side's own INSERT queries per
	// million rows (0 for the Kafka engine, or when not measured).
	query []float64
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
	// QueryCPUPerMillion is the ClickHouse CPU of the side's own INSERT
	// queries (system.query_log), unaffected by anything else the server
	// does: merges, other clients.
	QueryCPUPerMillion float64 `json:"server_query_cpu_s_per_million,omitempty"`
	Settings           string  `json:"settings"`
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
			rate, used, query, err := e.measureOnce(ctx, s, round)
			if err != nil {
				return nil, nil, fmt.Errorf("%s, run %d: %w", s.what, round, err)
			}
			logf("%s, run %d of %d: %.0f/s", s.what, round, rounds, rate)
			cpu, proc, server := used.PerMillion(s.rows), used.ProcPerMillion(s.rows), used.ServerPerMillion(s.rows)
			o := &out[i]
			o.rates, o.cpu = append(o.rates, rate), append(o.cpu, cpu)
			o.proc, o.server = append(o.proc, proc), append(o.server, server)
			q := query.Seconds() * 1e6 / float64(s.rows)
			o.query = append(o.query, q)
			runs = append(runs, Run{Round: round, Side: s.name, Rate: rate, CPUPerMillion: cpu,
				ProcessCPUPerMillion: proc, ServerCPUPerMillion: server, QueryCPUPerMillion: q, Settings: s.settings})
		}
	}
	return out, runs, nil
}

// measureOnce prepares and runs one measurement of s, returning its rate,
// the CPU time it cost and the server CPU of its own queries.
func (e *env) measureOnce(ctx context.Context, s side, run int) (float64, benchkit.CPU, time.Duration, error) {
	for _, t := range s.tables {
		if err := e.Conn.Exec(ctx, "TRUNCATE TABLE "+e.DB+"."+t); err != nil {
			return 0, benchkit.CPU{}, 0, err
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	quiesce(ctx, e.Conn)
	q0 := e.queryCPU(ctx, s.own)
	before := benchkit.CPUNow()
	rate, err := s.measure(run)
	if err != nil {
		return 0, benchkit.CPU{}, 0, err
	}
	used := benchkit.CPUNow().Since(before)
	query := e.queryCPU(ctx, s.own) - q0
	logf("  %s; its own INSERT queries %.2f CPU s per million rows in the server", used.String(s.rows), query.Seconds()*1e6/float64(s.rows))
	return rate, used, query, nil
}

// queryCPU is the ClickHouse CPU (user and system time of the query
// threads) of every finished INSERT into the bench database's tables so
// far, from system.query_log, after flushing the server's logs; 0 for no
// tables or when it cannot be read. Each side inserts into tables of its
// own and runs alone, so the difference over a run is the run's. The
// sides' inserts are logged through log_queries (see logQueries).
func (e *env) queryCPU(ctx context.Context, tables []string) time.Duration {
	if len(tables) == 0 {
		return 0
	}
	if err := e.Conn.Exec(ctx, "SYSTEM FLUSH LOGS"); err != nil {
		return 0
	}
	var like []string
	var into []any
	for _, t := range tables {
		like, into = append(like, "query LIKE ?"), append(into, "INSERT INTO "+e.DB+"."+t+" %")
	}
	var us uint64
	err := e.Conn.QueryRow(ctx, `SELECT toUInt64(sum(arraySum(arrayFilter((v, n) -> n IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds'),
		ProfileEvents.Values, ProfileEvents.Names))))
		FROM system.query_log WHERE type = 2 AND event_date >= yesterday() AND (`+strings.Join(like, " OR ")+`)`, into...).Scan(&us)
	if err != nil {
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// logQueries is ctx with log_queries on for the ClickHouse queries made
// with it, so that system.query_log has their CPU (see queryCPU).
func logQueries(ctx context.Context) context.Context {
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"log_queries": 1}))
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
// round: the ratio of paired runs. A round whose baseline read 0 (a CPU
// figure system.query_log did not have) has no ratio and is left out; 0
// when no round has one.
func medianRatio(a, b outcome) float64 {
	var r []float64
	for i := range min(len(a.rates), len(b.rates)) {
		if b.rates[i] != 0 {
			r = append(r, a.rates[i]/b.rates[i])
		}
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
// ClickHouse 18.16 answers count() by reading a column. Even this query
// costs the server about 2 ms of CPU (measured on the 2-core machine), so
// it is not polled while the writer runs: see untilStored.
func stored(ctx context.Context, conn driver.Conn, db, table string) (uint64, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT toUInt64(sum(rows)) FROM system.parts WHERE active AND database = ? AND table = ?", db, table).Scan(&n)
	return n, err
}

// storedIn is a counter of the rows stored into the bench's table.
func storedIn(ctx context.Context, e *env, table string) func() (uint64, error) {
	return func() (uint64, error) { return stored(ctx, e.Conn, e.DB, table) }
}

// pollEvery is the wait between two polls of untilStored, elapsed after
// its start: 10 ms, or 0.5% of elapsed when that is longer (at most
// 100 ms), so a rate is off by 0.5% at most while a long run does not pay
// a query to the server every 10 ms.
func pollEvery(elapsed time.Duration) time.Duration {
	return min(max(10*time.Millisecond, elapsed/200), 100*time.Millisecond)
}

// untilStored is the rate of a consumer storing n rows: from the first
// poll (see pollEvery) at which assigned reports that its group gave it
// partitions (so the group join, seconds that any consumer pays once, is
// not counted) to the first poll at which count reports n rows stored, so
// every batch's whole work is. The writer and the Kafka engine are timed
// by this one function: the writer's count is its counter of rows
// ClickHouse acknowledged (read in this process, at no cost to the
// server), the engine's the rows of its target table's parts (stored).
func untilStored(n int, count func() (uint64, error), assigned func() bool) (float64, error) {
	start := time.Now()
	deadline := start.Add(10 * time.Minute)
	var assignedAt, firstAt time.Time
	for {
		if assignedAt.IsZero() && assigned() {
			assignedAt = time.Now()
		}
		c, err := count()
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
			return 0, fmt.Errorf("stored %d of %d rows in 10 minutes", c, n)
		}
		time.Sleep(pollEvery(time.Since(start)))
	}
}

// writerIngest runs a writer in a new group until it stored n events,
// timed by untilStored. With profile set, the process's CPU profile of the
// run is written there.
func writerIngest(ctx context.Context, e *env, topic string, n int, group, profile string) (float64, error) {
	stop, err := benchkit.ProfileRun(profile)
	if err != nil {
		return 0, err
	}
	defer stop()
	w, err := e.StartWriter(logQueries(ctx), e.Conn, e.DB, topic, group, writerBatchAge)
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	inserted := func() (uint64, error) { return uint64(w.Value("audittrail_writer_rows_inserted_total")), nil }
	return untilStored(n, inserted, func() bool { return w.Value("audittrail_writer_assigned_partitions") > 0 })
}
