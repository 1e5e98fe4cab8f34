// Package main is the bench command, which runs the headline ingest
// benchmarks.
//
// It runs them on the real Kafka and ClickHouse servers and writes the
// results as JSON, a Markdown table and an SVG chart. Every figure is
// reported with a baseline measured in the same run, so ratios compare
// across machines:
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
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

var brokers = []string{"127.0.0.1:9092"}

type options struct {
	quick   bool
	writer  bool // only the writer against clickhouse-client
	rows    int
	rates   []int
	latDur  time.Duration
	outDir  string
	started time.Time
}

// Figure is one measured number.
type Figure struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"` // Value / baseline value
	Target   string  `json:"target,omitempty"`
}

// Report is what the command writes.
type Report struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Servers string   `json:"servers"`
	Mode    string   `json:"mode"`
	Rows    int      `json:"rows"`
	Figures []Figure `json:"figures"`
	Latency []LatRow `json:"latency"`
	Took    string   `json:"took"`
}

// LatRow is the end-to-end latency at one rate.
type LatRow struct {
	Rate     int     `json:"rate"`
	Achieved float64 `json:"achieved_rate"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Maxms    float64 `json:"max_ms"`
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

type env struct {
	conn driver.Conn
	db   string
	sfx  string
	adm  *kadm.Client
	cl   *kgo.Client
}

func run(ctx context.Context, o options) (*Report, error) {
	e := &env{sfx: fmt.Sprintf("%x", time.Now().UnixNano())}
	e.db = "bench_" + e.sfx
	var err error
	// AUDITTRAIL_CLICKHOUSE_COMPRESSION applies, as in the writer.
	e.conn, err = chconn.Open(ctx, chconn.Config{Addr: "127.0.0.1:9000", Database: e.db, Username: "default",
		Compression: os.Getenv("AUDITTRAIL_CLICKHOUSE_COMPRESSION"),
		DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Minute, MaxOpenConns: 8})
	if err != nil {
		return nil, err
	}
	defer e.conn.Close()
	applied, err := migrations.Apply(ctx, e.conn, migrations.Options{Database: e.db, RetentionDays: 90})
	if err != nil {
		return nil, err
	}
	defer func() { _ = e.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+e.db) }()
	if e.cl, err = kgo.NewClient(kgo.SeedBrokers(brokers...)); err != nil {
		return nil, err
	}
	defer e.cl.Close()
	e.adm = kadm.NewClient(e.cl)
	var topics []string
	defer func() { _, _ = e.adm.DeleteTopics(context.Background(), topics...) }()
	topic := func(name string) (string, error) {
		t := "bench-" + name + "-" + e.sfx
		topics = append(topics, t)
		return t, kafkaconn.EnsureTopics(ctx, e.cl, 6, nil, t)
	}

	rep := &Report{Date: time.Now().UTC().Format("2006-01-02"), Machine: machine(), Rows: o.rows,
		Servers: fmt.Sprintf("Kafka 4.1.1 (KRaft, 1 node), ClickHouse %s", applied.Server)}
	rep.Mode = "full"
	if o.quick {
		rep.Mode = "quick"
	}

	logf("generating %d events", o.rows)
	events, contract, flat := generate(o.rows)

	// Baseline 1: clickhouse-client inserting the rows.
	if err := e.conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s.raw AS %s.%s", e.db, e.db, migrations.Table)); err != nil {
		return nil, err
	}
	rowsFile, err := writeRows("", flat)
	if err != nil {
		return nil, err
	}
	defer os.Remove(rowsFile)

	// Baseline 2: plain franz-go produce and consume of the same records.
	tEvents, err := topic("events")
	if err != nil {
		return nil, err
	}
	logf("plain franz-go produce of %d records", o.rows)
	prodRate, err := produceAll(ctx, tEvents, events, contract)
	if err != nil {
		return nil, err
	}
	var consRate, engineRate float64
	if !o.writer {
		logf("plain franz-go consume of %d records", o.rows)
		if consRate, err = drillkit.ConsumeRate(ctx, brokers, tEvents, o.rows, "bench-plain-"+tEvents); err != nil {
			return nil, err
		}
		// Baseline 3: ClickHouse's Kafka engine + materialized view.
		tFlat, err := topic("flat")
		if err != nil {
			return nil, err
		}
		quiesce(ctx, e.conn)
		logf("ClickHouse Kafka engine + materialized view")
		if engineRate, err = kafkaEngine(ctx, e, tFlat, events, flat, o.rows); err != nil {
			return nil, err
		}
	}

	// The product: the writer storing the events already on Kafka, side by
	// side with clickhouse-client loading the same rows. The writer runs in
	// this process, so the generated events are dropped first: a writer
	// process holds none of them, and their heap would otherwise cost this
	// one garbage collection and memory the writer does not have to pay.
	events, contract, flat = nil, nil, nil
	rates, err := bestOf3(ctx, e,
		measurement{what: fmt.Sprintf("clickhouse-client insert of %d rows (JSONEachRow)", o.rows), rows: o.rows, tables: []string{"raw"},
			measure: func(int) (float64, error) { return clientInsert(ctx, e.db+".raw", rowsFile, o.rows) }},
		// Each run is a new consumer group storing every event into
		// emptied tables (the id registry too, or the next run would find
		// every id already stored).
		measurement{what: "writer: Kafka -> ClickHouse", rows: o.rows, tables: []string{migrations.Table, migrations.IDsTable},
			measure: func(run int) (float64, error) {
				return writerIngest(ctx, e, tEvents, o.rows, fmt.Sprintf("bench-writer-%s-%d", e.sfx, run))
			}})
	if err != nil {
		return nil, err
	}
	rawRate, writerRate := rates[0].best, rates[1].best

	rep.Figures = append(rep.Figures,
		Figure{Name: "clickhouse-client insert (JSONEachRow, best of 3)", Value: rawRate, Unit: "rows/s"},
		Figure{Name: "franz-go produce (plain)", Value: prodRate, Unit: "records/s"},
		Figure{Name: "audittrail writer: Kafka -> ClickHouse (best of 3)", Value: writerRate, Unit: "events/s",
			Baseline: "clickhouse-client insert", Ratio: writerRate / rawRate, Target: ">= 0.80"},
		Figure{Name: "audittrail writer: each run over the clickhouse-client run before it (median of 3)", Value: medianRatio(rates[1], rates[0]),
			Unit: "ratio"},
		Figure{Name: "CPU per million rows: clickhouse-client and the server (least of 3)", Value: rates[0].cpu, Unit: "CPU s"},
		Figure{Name: "CPU per million events: writer, the server and the broker (least of 3)", Value: rates[1].cpu, Unit: "CPU s",
			Baseline: "clickhouse-client", Ratio: rates[1].cpu / rates[0].cpu},
	)
	if o.writer {
		rep.Mode += ", writer only"
		rep.Took = time.Since(o.started).Round(time.Second).String()
		return rep, nil
	}
	rep.Figures = append(rep.Figures,
		Figure{Name: "franz-go consume (plain)", Value: consRate, Unit: "records/s"},
		Figure{Name: "ClickHouse Kafka engine + MV", Value: engineRate, Unit: "rows/s"},
		Figure{Name: "audittrail writer vs Kafka engine", Value: writerRate, Unit: "events/s",
			Baseline: "ClickHouse Kafka engine + MV", Ratio: writerRate / engineRate, Target: ">= 1.00"},
		Figure{Name: "audittrail writer vs plain franz-go consume", Value: writerRate, Unit: "events/s",
			Baseline: "franz-go consume (plain)", Ratio: writerRate / consRate},
	)

	for _, rate := range o.rates {
		t, err := topic(fmt.Sprintf("lat%d", rate))
		if err != nil {
			return nil, err
		}
		logf("end-to-end latency at %d events/s for %s", rate, o.latDur)
		row, err := latency(ctx, e, t, rate, o.latDur)
		if err != nil {
			return nil, err
		}
		rep.Latency = append(rep.Latency, row)
	}
	rep.Took = time.Since(o.started).Round(time.Second).String()
	return rep, nil
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.TrimPrefix(strings.Split(string(b), "\n")[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/1024/1024)
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s", runtime.NumCPU(), strings.TrimSpace(model), mem, runtime.GOOS, runtime.GOARCH)
}

// generate makes n events and their two encodings: the contract JSON (what
// producers publish) and the flat table row as JSONEachRow.
func generate(n int) ([]event.Event, [][]byte, [][]byte) {
	g, _ := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Spread: 72 * time.Hour, Seed: 42}, time.Now)
	events := make([]event.Event, n)
	contract := make([][]byte, n)
	flat := make([][]byte, n)
	now := time.Now().UTC()
	for i := range events {
		e := g.Next()
		e.ReceivedAt = now
		events[i] = e
		contract[i], _ = event.Marshal(&e)
		r := migrations.RowOf(&e)
		flat[i], _ = json.Marshal(map[string]any{
			"workspace_id": r.WorkspaceID, "timestamp": r.Timestamp.Format(time.DateTime), "timestamp_ns": r.TimestampNs,
			"id": r.ID, "event": r.Event, "category": r.Category, "actor_type": r.ActorType, "actor_id": r.ActorID,
			"actor_name": r.ActorName, "actor_email": r.ActorEmail, "resource_type": r.ResourceType, "resource_id": r.ResourceID,
			"resource_name": r.ResourceName, "changes": r.Changes, "context_ip": r.ContextIP, "context_user_agent": r.ContextUserAgent,
			"context_request_id": r.ContextRequestID, "properties": r.Properties,
			"received_at": r.ReceivedAt.Format(time.DateTime), "received_at_ns": r.ReceivedAtNs,
		})
	}
	return events, contract, flat
}

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
				if err := e.conn.Exec(ctx, "TRUNCATE TABLE "+e.db+"."+t); err != nil {
					return nil, err
				}
			}
			runtime.GC()
			debug.FreeOSMemory()
			quiesce(ctx, e.conn)
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

// writeRows writes the rows as JSONEachRow to a file in dir, the input of
// clickhouse-client.
func writeRows(dir string, flat [][]byte) (string, error) {
	f, err := os.CreateTemp(dir, "bench-rows-*.json")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, row := range flat {
		_, _ = w.Write(row)
		_ = w.WriteByte('\n')
	}
	if err := cmp.Or(w.Flush(), f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// clientInsert runs clickhouse-client reading the rows from a file, as an
// operator loading them would.
func clientInsert(ctx context.Context, table, rowsFile string, n int) (float64, error) {
	in, err := os.Open(rowsFile)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	cmd := exec.CommandContext(ctx, "clickhouse-client", "--host", "127.0.0.1", "--port", "9000",
		"--query", "INSERT INTO "+table+" FORMAT JSONEachRow")
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("clickhouse-client: %w: %s", err, stderr.String())
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func records(topic string, events []event.Event, values [][]byte) []*kgo.Record {
	recs := make([]*kgo.Record, len(values))
	for i := range values {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(events[i].WorkspaceID), Value: values[i]}
	}
	return recs
}

func produceAll(ctx context.Context, topic string, events []event.Event, values [][]byte) (float64, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, emitter.ProducerOptions(emitter.Config{Topic: topic, DeliveryTimeout: time.Minute})...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	recs := records(topic, events, values)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return float64(len(recs)) / time.Since(start).Seconds(), nil
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

// startWriter runs a writer in this process until the returned function
// is called; reg holds its metrics.
func startWriter(ctx context.Context, e *env, topic, group string, batchAge time.Duration) (stop func(), reg *prometheus.Registry, err error) {
	// The writer's defaults, or what AUDITTRAIL_WRITER_* set (to compare
	// settings).
	env := config.FromOS()
	cfg := writer.FromEnv(env, topic)
	if err := env.Err(); err != nil {
		return nil, nil, err
	}
	cfg.DeadLetterTopic, cfg.Group = topic+"-dlq", group
	cfg.BatchAge = batchAge
	reg = prometheus.NewRegistry()
	w, err := writer.New(cfg, []kgo.Opt{kgo.SeedBrokers(brokers...)}, writer.NewClickHouseSink(e.conn, e.db),
		slog.New(slog.NewTextHandler(io.Discard, nil)), reg, nil)
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(wctx) }()
	return func() { cancel(); <-done }, reg, nil
}

// gauge is the value of a gauge without labels in reg (0 when absent).
func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// writerIngest runs a writer in a new group until it stored n events and
// returns its sustained rate: from the moment the group assigned it the
// partitions (so the group join, seconds that any consumer pays once, is
// not counted) to the last row stored, so every batch's whole work is.
func writerIngest(ctx context.Context, e *env, topic string, n int, group string) (float64, error) {
	start := time.Now()
	stop, reg, err := startWriter(ctx, e, topic, group, 250*time.Millisecond)
	if err != nil {
		return 0, err
	}
	defer stop()
	deadline := time.Now().Add(10 * time.Minute)
	var assignedAt time.Time
	for {
		if assignedAt.IsZero() && gauge(reg, "audittrail_writer_assigned_partitions") > 0 {
			assignedAt = time.Now()
		}
		c, err := stored(ctx, e.conn, e.db, migrations.Table)
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

func kafkaEngine(ctx context.Context, e *env, topic string, events []event.Event, flat [][]byte, n int) (float64, error) {
	cols := strings.Join(migrations.InsertColumns, ", ")
	stmts := []string{
		fmt.Sprintf("CREATE TABLE %s.engine_target AS %s.%s", e.db, e.db, migrations.Table),
		fmt.Sprintf(`CREATE TABLE %s.engine_queue (
    workspace_id String, timestamp DateTime('UTC'), timestamp_ns Int64, id String, event String, category String,
    actor_type String, actor_id String, actor_name String, actor_email String,
    resource_type String, resource_id String, resource_name String, changes String,
    context_ip String, context_user_agent String, context_request_id String, properties String,
    received_at DateTime('UTC'), received_at_ns Int64, sender_credential_id String, sender_producer String
) ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s', kafka_group_name = 'bench-engine-%s',
  kafka_format = 'JSONEachRow', kafka_num_consumers = 2`, e.db, brokers[0], topic, e.sfx),
		fmt.Sprintf("CREATE MATERIALIZED VIEW %s.engine_mv TO %s.engine_target AS SELECT %s, now() AS inserted_at FROM %s.engine_queue", e.db, e.db, cols, e.db),
	}
	for _, s := range stmts {
		if err := e.conn.Exec(ctx, s); err != nil {
			return 0, fmt.Errorf("kafka engine setup: %w", err)
		}
	}
	defer func() {
		_ = e.conn.Exec(context.Background(), fmt.Sprintf("DROP TABLE IF EXISTS %s.engine_mv", e.db))
		_ = e.conn.Exec(context.Background(), fmt.Sprintf("DROP TABLE IF EXISTS %s.engine_queue", e.db))
	}()
	// The engine's new group starts at the latest offset: give it time to
	// join before producing.
	time.Sleep(5 * time.Second)
	start := time.Now()
	if _, err := produceAll(ctx, topic, events, flat); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		c, err := stored(ctx, e.conn, e.db, "engine_target")
		if err != nil {
			return 0, err
		}
		if int(c) >= n {
			return float64(n) / time.Since(start).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("kafka engine stored %d of %d in 3 minutes (see the ClickHouse error log)", c, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// latency emits events at a fixed rate through the emitter while the writer
// runs, and measures for the k-th acknowledged event the time until the
// table holds k rows: an upper bound of ack-to-queryable for that event
// (rows of later events may land first, never the reverse in count).
func latency(ctx context.Context, e *env, topic string, rate int, d time.Duration) (LatRow, error) {
	// The writer inserts into audit_events; use a fresh database per rate.
	db := fmt.Sprintf("%s_lat%d", e.db, rate)
	if _, err := migrations.Apply(ctx, e.conn, migrations.Options{Database: db, RetentionDays: 90}); err != nil {
		return LatRow{}, err
	}
	defer func() { _ = e.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) }()
	sub := &env{conn: e.conn, db: db, sfx: e.sfx}
	stop, _, err := startWriter(ctx, sub, topic, fmt.Sprintf("bench-lat-%d-%s", rate, e.sfx), writer.Defaults().BatchAge)
	if err != nil {
		return LatRow{}, err
	}
	defer stop()
	em, err := emitter.New(emitter.Config{Topic: topic}, []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil)
	if err != nil {
		return LatRow{}, err
	}
	defer em.Close()
	g, _ := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Seed: uint64(rate)}, time.Now)
	// Let the writer join its group before the clock starts.
	time.Sleep(3 * time.Second)

	var mu sync.Mutex
	var acks []time.Time
	var sendErr error
	total := int(float64(rate) * d.Seconds())
	start := time.Now()
	var wg sync.WaitGroup
	const senders = 64
	for s := range senders {
		wg.Go(func() {
			for i := s; i < total; i += senders {
				due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
				if w := time.Until(due); w > 0 {
					time.Sleep(w)
				}
				mu.Lock()
				ev := g.Next()
				mu.Unlock()
				if err := em.Emit(ctx, ev); err != nil {
					mu.Lock()
					sendErr = cmp.Or(sendErr, err)
					mu.Unlock()
					continue
				}
				now := time.Now()
				mu.Lock()
				acks = append(acks, now)
				mu.Unlock()
			}
		})
	}
	// Poll the row count while sending.
	type sample struct {
		at time.Time
		n  uint64
	}
	var samples []sample
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		deadline := start.Add(d + 30*time.Second)
		for time.Now().Before(deadline) {
			c, err := count(ctx, e.conn, db+"."+migrations.Table)
			if err == nil {
				samples = append(samples, sample{time.Now(), c})
				if int(c) >= total {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	wg.Wait()
	achieved := float64(len(acks)) / time.Since(start).Seconds()
	<-pollDone
	if sendErr != nil {
		return LatRow{}, sendErr
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	var lats []float64
	j := 0
	for k, ack := range acks {
		for j < len(samples) && int(samples[j].n) < k+1 {
			j++
		}
		if j == len(samples) {
			return LatRow{}, fmt.Errorf("only %d of %d events became queryable", samples[len(samples)-1].n, len(acks))
		}
		lats = append(lats, max(0, samples[j].at.Sub(ack).Seconds()*1000))
	}
	slices.Sort(lats)
	pct := func(p float64) float64 { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	return LatRow{Rate: rate, Achieved: achieved, P50ms: pct(0.5), P99ms: pct(0.99), Maxms: lats[len(lats)-1]}, nil
}

func markdown(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Benchmarks (%s mode, %d events), %s, on %s; %s; took %s.\n\n", r.Mode, r.Rows, r.Date, r.Machine, r.Servers, r.Took)
	fmt.Fprintln(&b, "| measurement | value | baseline (same run) | ratio | target |")
	fmt.Fprintln(&b, "|---|---|---|---|---|")
	for _, f := range r.Figures {
		ratio := ""
		if f.Baseline != "" {
			ratio = fmt.Sprintf("%.2f", f.Ratio)
		}
		value := fmt.Sprintf("%.0f", f.Value)
		if f.Value < 100 {
			value = fmt.Sprintf("%.2f", f.Value)
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s |\n", f.Name, value, f.Unit, f.Baseline, ratio, f.Target)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| end-to-end (producer ack -> queryable) | achieved rate | p50 | p99 | max |")
	fmt.Fprintln(&b, "|---|---|---|---|---|")
	for _, l := range r.Latency {
		fmt.Fprintf(&b, "| %d events/s | %.0f/s | %.0f ms | %.0f ms | %.0f ms |\n", l.Rate, l.Achieved, l.P50ms, l.P99ms, l.Maxms)
	}
	return b.String()
}

func write(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644),
		os.WriteFile(filepath.Join(dir, "results.md"), []byte(markdown(r)), 0o644),
		os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(chart(r)), 0o644),
	)
}

// chart draws throughput bars and latency bars as one SVG.
func chart(r *Report) string {
	var b strings.Builder
	const w, rowH, labelW, barW = 860, 26, 330, 420
	var thr []Figure
	seen := map[string]bool{}
	for _, f := range r.Figures {
		if !strings.HasSuffix(f.Unit, "/s") {
			continue // rates only
		}
		name := f.Name
		if f.Baseline != "" {
			name = "audittrail writer: Kafka -> ClickHouse"
		}
		if !seen[name] {
			seen[name] = true
			thr = append(thr, Figure{Name: name, Value: f.Value, Unit: f.Unit})
		}
	}
	h := 60 + len(thr)*rowH + 60 + len(r.Latency)*rowH*2 + 30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="13">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/><text x="10" y="22" font-size="16" font-weight="bold">Throughput (events/s), %s, %s</text>`+"\n", r.Date, r.Mode)
	maxV := 0.0
	for _, f := range thr {
		maxV = max(maxV, f.Value)
	}
	y := 40
	for _, f := range thr {
		color := "#9aa5b1"
		if strings.HasPrefix(f.Name, "audittrail") {
			color = "#2f6fde"
		}
		bw := int(f.Value / maxV * barW)
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text><rect x="%d" y="%d" width="%d" height="18" fill="%s"/><text x="%d" y="%d">%.0f</text>`+"\n",
			y+14, esc(f.Name), labelW, y, bw, color, labelW+bw+6, y+14, f.Value)
		y += rowH
	}
	y += 30
	fmt.Fprintf(&b, `<text x="10" y="%d" font-size="16" font-weight="bold">End-to-end latency, producer ack to queryable (ms)</text>`+"\n", y)
	y += 18
	maxL := 0.0
	for _, l := range r.Latency {
		maxL = max(maxL, l.P99ms)
	}
	for _, l := range r.Latency {
		for _, p := range []struct {
			name  string
			v     float64
			color string
		}{{"p50", l.P50ms, "#7fb37f"}, {"p99", l.P99ms, "#d9822b"}} {
			bw := int(p.v / max(maxL, 1) * barW)
			fmt.Fprintf(&b, `<text x="10" y="%d">%d events/s %s</text><rect x="%d" y="%d" width="%d" height="18" fill="%s"/><text x="%d" y="%d">%.0f</text>`+"\n",
				y+14, l.Rate, p.name, labelW, y, bw, p.color, labelW+bw+6, y+14, p.v)
			y += rowH
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
