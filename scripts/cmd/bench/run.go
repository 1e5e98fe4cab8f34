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

// partitions is the partition count of every topic of the run.
const partitions = 6

// writerBatchAge is the writer's batch age in the throughput runs.
const writerBatchAge = 250 * time.Millisecond

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

// topic creates the run's topic for name.
func (e *env) topic(ctx context.Context, name string) (string, error) {
	t := "bench-" + name + "-" + e.sfx
	e.topics = append(e.topics, t)
	return t, kafkaconn.EnsureTopics(ctx, e.Client, partitions, nil, t)
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
	rep := &Report{Date: time.Now().UTC().Format("2006-01-02"), Machine: machine(), Rows: o.rows, Rounds: o.rounds,
		Servers:  fmt.Sprintf("Kafka 4.1.1 (KRaft, 1 node, %d partitions per topic), ClickHouse %s", partitions, e.ServerVersion),
		Settings: map[string]string{}}
	rep.Mode = "full"
	if o.quick {
		rep.Mode = "quick"
	}
	base, err := e.baselines(ctx, o)
	if err != nil {
		return nil, err
	}
	defer os.Remove(base.rowsFile)
	if err := e.compare(ctx, o, base, rep); err != nil {
		return nil, err
	}
	if o.writer {
		rep.Mode += ", writer only"
		rep.Took = time.Since(o.started).Round(time.Second).String()
		return rep, nil
	}
	for _, rate := range o.rates {
		t, err := e.topic(ctx, fmt.Sprintf("lat%d", rate))
		if err != nil {
			return nil, err
		}
		logf("end-to-end latency at %d events/s offered for %s", rate, o.latDur)
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
	events   string // the topic holding the events (contract JSON)
	flat     string // the topic holding the same events as flat rows, for the Kafka engine; "" with -writer-only
	produce  float64
	consume  float64 // 0 with -writer-only
}

// baselines generates the events, puts them on Kafka (both encodings,
// before anything consumes them) and measures plain franz-go. The
// generated events are dropped when it returns: the writer then runs in
// this process, and a writer process holds none of them; their heap would
// otherwise cost this one garbage collection and memory the writer does
// not have to pay.
func (e *env) baselines(ctx context.Context, o options) (b baseline, err error) {
	logf("generating %d events", o.rows)
	events, contract, flat := generate(o.rows)

	// clickhouse-client inserts the rows from a file into a table like ours.
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

	// Plain franz-go produce and consume of the same records.
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
	// The Kafka engine's input: 18.16's engine cannot parse the nested
	// contract JSON, so it reads the same events as flat rows.
	if b.flat, err = e.topic(ctx, "flat"); err != nil {
		return b, err
	}
	logf("producing %d flat rows for the Kafka engine", o.rows)
	if _, err = produceAll(ctx, e, b.flat, events, flat); err != nil {
		return b, err
	}
	return b, e.createEngineTarget(ctx)
}

// compare measures the product, the writer storing the events already on
// Kafka, against clickhouse-client loading the same rows and (unless
// -writer-only) the Kafka engine with the best settings of its grid, in
// interleaved rounds.
func (e *env) compare(ctx context.Context, o options, b baseline, rep *Report) error {
	wcfg, err := benchkit.WriterConfig(b.events, "", writerBatchAge)
	if err != nil {
		return err
	}
	compression := e.ClickHouse.CompressionMethod()
	rep.Settings["compression"] = fmt.Sprintf("%s on the writer's and clickhouse-client's connections (the Kafka engine inserts inside the server)", compression)
	rep.Settings["writer"] = fmt.Sprintf("batch size %d, batch age %s, %d insert streams, dedupe window %s (%d ids)",
		wcfg.BatchSize, wcfg.BatchAge, wcfg.InsertStreams, wcfg.DedupeWindow, wcfg.DedupeMaxIDs)
	sides := []side{
		{name: "client", what: fmt.Sprintf("clickhouse-client insert of %d rows (JSONEachRow)", o.rows), rows: o.rows, tables: []string{"raw"}, own: []string{"raw"},
			settings: "compression " + compression,
			measure:  func(int) (float64, error) { return clientInsert(ctx, e, e.DB+".raw", b.rowsFile, o.rows) }},
		// Each run is a new consumer group storing every event into
		// emptied tables (the id registry too, or the next run would find
		// every id already stored).
		{name: "writer", what: "writer: Kafka -> ClickHouse", rows: o.rows, tables: []string{migrations.Table, migrations.IDsTable},
			own:      []string{migrations.Table, migrations.IDsTable},
			settings: rep.Settings["writer"] + ", compression " + compression,
			measure: func(run int) (float64, error) {
				profile := ""
				if o.cpuProfile != "" {
					profile = fmt.Sprintf("%s.%d", o.cpuProfile, run)
				}
				return writerIngest(ctx, e, b.events, o.rows, fmt.Sprintf("bench-writer-%s-%d", e.sfx, run), profile)
			}},
	}
	if !o.writer {
		rep.Settings["stream_flush_interval_ms"] = e.serverSetting(ctx, "stream_flush_interval_ms")
		trials, best, err := e.tuneEngine(ctx, o, b.flat)
		if err != nil {
			return err
		}
		rep.EngineGrid, rep.Settings["engine"] = trials, best.String()
		sides = append(sides, side{name: "engine", what: "Kafka engine + MV, " + best.String(), rows: o.rows, tables: []string{engineTarget},
			settings: best.String(),
			measure: func(run int) (float64, error) {
				return e.engineIngest(ctx, b.flat, partitions, o.rows, best, fmt.Sprint(run))
			}})
	}
	out, runs, err := interleave(ctx, e, o.rounds, sides...)
	if err != nil {
		return err
	}
	rep.Runs = runs
	rep.Figures = figures(b, out)
	return nil
}

// serverSetting is the value of a setting of the server's default profile
// ("unknown" when it cannot be read).
func (e *env) serverSetting(ctx context.Context, name string) string {
	var v string
	if err := e.Conn.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = ?", name).Scan(&v); err != nil {
		return "unknown"
	}
	return v
}
