package main

// The run: the benchmark's own slice of the servers and the order of the
// measurements.

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/scripts/internal/benchkit"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// env is the run's own database and topics on the configured servers.
type env struct {
	*benchkit.Bench
	sfx    string
	topics []string // created by topic, deleted by close
}

// openEnv creates the run's database. AUDITTRAIL_CLICKHOUSE_COMPRESSION
// applies, as in the writer.
func openEnv(ctx context.Context) (*env, error) {
	sfx := fmt.Sprintf("%x", time.Now().UnixNano())
	b, err := benchkit.Open(ctx, "bench_"+sfx, 8, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	return &env{Bench: b, sfx: sfx}, nil
}

// topic creates the run's topic for name (6 partitions).
func (e *env) topic(ctx context.Context, name string) (string, error) {
	t := "bench-" + name + "-" + e.sfx
	e.topics = append(e.topics, t)
	return t, kafkaconn.EnsureTopics(ctx, e.Client, 6, nil, t)
}

func (e *env) close() {
	_, _ = e.Admin.DeleteTopics(context.Background(), e.topics...)
	e.Close()
}

func run(ctx context.Context, o options) (*Report, error) {
	e, err := openEnv(ctx)
	if err != nil {
		return nil, err
	}
	defer e.close()
	rep := &Report{Date: time.Now().UTC().Format("2006-01-02"), Machine: machine(), Rows: o.rows,
		Servers: fmt.Sprintf("Kafka 4.1.1 (KRaft, 1 node), ClickHouse %s", e.ServerVersion)}
	rep.Mode = "full"
	if o.quick {
		rep.Mode = "quick"
	}
	base, err := e.baselines(ctx, o)
	if err != nil {
		return nil, err
	}
	defer os.Remove(base.rowsFile)
	rates, err := e.writerAgainstClient(ctx, o, base)
	if err != nil {
		return nil, err
	}
	rep.Figures = writerFigures(base, rates)
	if o.writer {
		rep.Mode += ", writer only"
		rep.Took = time.Since(o.started).Round(time.Second).String()
		return rep, nil
	}
	rep.Figures = append(rep.Figures, baselineFigures(base, rates[1].best)...)
	for _, rate := range o.rates {
		t, err := e.topic(ctx, fmt.Sprintf("lat%d", rate))
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

// baseline is what the writer is compared with.
type baseline struct {
	rowsFile string // the rows as JSONEachRow, for clickhouse-client
	events   string // the topic holding the events
	produce  float64
	consume  float64 // 0 with -writer-only
	engine   float64 // 0 with -writer-only
}

// baselines generates the events and measures the baselines. The
// generated events are dropped when it returns: the writer then runs in
// this process, and a writer process holds none of them; their heap would
// otherwise cost this one garbage collection and memory the writer does
// not have to pay.
func (e *env) baselines(ctx context.Context, o options) (b baseline, err error) {
	logf("generating %d events", o.rows)
	events, contract, flat := generate(o.rows)

	// Baseline 1: clickhouse-client inserting the rows.
	if err := e.Conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s.raw AS %s.%s", e.DB, e.DB, migrations.Table)); err != nil {
		return b, err
	}
	if b.rowsFile, err = writeRows("", flat); err != nil {
		return b, err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(b.rowsFile)
		}
	}()

	// Baseline 2: plain franz-go produce and consume of the same records.
	if b.events, err = e.topic(ctx, "events"); err != nil {
		return b, err
	}
	logf("plain franz-go produce of %d records", o.rows)
	if b.produce, err = produceAll(ctx, e, b.events, events, contract); err != nil {
		return b, err
	}
	if o.writer {
		return b, nil
	}
	logf("plain franz-go consume of %d records", o.rows)
	if b.consume, err = drillkit.ConsumeRate(ctx, e.Kafka.Brokers, b.events, o.rows, "bench-plain-"+b.events); err != nil {
		return b, err
	}
	// Baseline 3: ClickHouse's Kafka engine + materialized view.
	tFlat, err := e.topic(ctx, "flat")
	if err != nil {
		return b, err
	}
	quiesce(ctx, e.Conn)
	logf("ClickHouse Kafka engine + materialized view")
	b.engine, err = kafkaEngine(ctx, e, tFlat, events, flat, o.rows)
	return b, err
}

// writerAgainstClient measures the product, the writer storing the events
// already on Kafka, side by side with clickhouse-client loading the same
// rows.
func (e *env) writerAgainstClient(ctx context.Context, o options, b baseline) ([]outcome, error) {
	return bestOf3(ctx, e,
		measurement{what: fmt.Sprintf("clickhouse-client insert of %d rows (JSONEachRow)", o.rows), rows: o.rows, tables: []string{"raw"},
			measure: func(int) (float64, error) { return clientInsert(ctx, e, e.DB+".raw", b.rowsFile, o.rows) }},
		// Each run is a new consumer group storing every event into
		// emptied tables (the id registry too, or the next run would find
		// every id already stored).
		measurement{what: "writer: Kafka -> ClickHouse", rows: o.rows, tables: []string{migrations.Table, migrations.IDsTable},
			measure: func(run int) (float64, error) {
				return writerIngest(ctx, e, b.events, o.rows, fmt.Sprintf("bench-writer-%s-%d", e.sfx, run))
			}})
}

// writerFigures are the writer's figures against clickhouse-client (rates
// holds the client's outcome, then the writer's).
func writerFigures(b baseline, rates []outcome) []Figure {
	rawRate, writerRate := rates[0].best, rates[1].best
	return []Figure{
		{Name: "clickhouse-client insert (JSONEachRow, best of 3)", Value: rawRate, Unit: "rows/s"},
		{Name: "franz-go produce (plain)", Value: b.produce, Unit: "records/s"},
		{Name: "audittrail writer: Kafka -> ClickHouse (best of 3)", Value: writerRate, Unit: "events/s",
			Baseline: "clickhouse-client insert", Ratio: writerRate / rawRate, Target: ">= 0.80"},
		{Name: "audittrail writer: each run over the clickhouse-client run before it (median of 3)", Value: medianRatio(rates[1], rates[0]),
			Unit: "ratio"},
		{Name: "CPU per million rows: clickhouse-client and the server (least of 3)", Value: rates[0].cpu, Unit: "CPU s"},
		{Name: "CPU per million events: writer, the server and the broker (least of 3)", Value: rates[1].cpu, Unit: "CPU s",
			Baseline: "clickhouse-client", Ratio: rates[1].cpu / rates[0].cpu},
	}
}

// baselineFigures are the writer's figures against plain franz-go and the
// Kafka engine.
func baselineFigures(b baseline, writerRate float64) []Figure {
	return []Figure{
		{Name: "franz-go consume (plain)", Value: b.consume, Unit: "records/s"},
		{Name: "ClickHouse Kafka engine + MV", Value: b.engine, Unit: "rows/s"},
		{Name: "audittrail writer vs Kafka engine", Value: writerRate, Unit: "events/s",
			Baseline: "ClickHouse Kafka engine + MV", Ratio: writerRate / b.engine, Target: ">= 1.00"},
		{Name: "audittrail writer vs plain franz-go consume", Value: writerRate, Unit: "events/s",
			Baseline: "franz-go consume (plain)", Ratio: writerRate / b.consume},
	}
}
