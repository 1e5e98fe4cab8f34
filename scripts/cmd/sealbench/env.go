package main

// The runs' topics, databases and processes: a writer and a sealer in this
// process, and the load they read.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
	"github.com/audittrail/audittrail/scripts/internal/benchkit"
)

// sealerSettings are the sealer's settings the flags choose.
type sealerSettings struct {
	// batch is the sealer's AUDITTRAIL_SEALER_BATCH_SIZE (its default
	// when 0).
	batch int
	// sample and audit are its AUDITTRAIL_SEALER_SAMPLE and
	// AUDITTRAIL_SEALER_AUDIT.
	sample, audit int
	// offsets is whether the writer beside the sealer records its
	// offsets (the sealer's lookups then read the offsets record).
	offsets bool
}

type env struct {
	*benchkit.Bench
	sfx string
	// cpuProfile, when set, names the CPU profiles of the runs with the
	// sealer: cpuProfile.<round>, from the writer's assignment to the
	// last leaf (benchkit.ProfileRun).
	cpuProfile string
	sealerSettings
	topics []string
	dbs    []string
}

func (e *env) close() {
	if len(e.topics) > 0 {
		_, _ = e.Admin.DeleteTopics(context.Background(), e.topics...)
	}
	for _, db := range e.dbs {
		_ = e.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
	}
}

// topic creates a fresh events topic (compacted for checkpoints).
func (e *env) topic(ctx context.Context, name string, compacted bool) (string, error) {
	t := "sealbench-" + name + "-" + e.sfx
	e.topics = append(e.topics, t)
	if compacted {
		return t, kafkaconn.EnsureTopics(ctx, e.Client, 1, kvtopic.TopicConfigs(), t)
	}
	return t, kafkaconn.EnsureTopics(ctx, e.Client, topics.DefaultPartitions, nil, t)
}

// database creates a fresh database with the schema.
func (e *env) database(ctx context.Context, name string) (string, error) {
	db := "sealbench_" + name + "_" + e.sfx
	e.dbs = append(e.dbs, db)
	_, err := migrations.Apply(ctx, e.Conn, migrations.Options{Database: db, RetentionDays: 90})
	return db, err
}

// events returns a load generator's events of 1,000 workspaces, as the
// ingest path publishes them.
func events(seed uint64) func() event.Event {
	g, _ := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Seed: seed}, time.Now)
	return func() event.Event {
		ev := g.Next()
		ev.ReceivedAt = time.Now().UTC()
		return ev
	}
}

func record(topic string, ev event.Event) (*kgo.Record, error) {
	b, err := event.Marshal(&ev)
	return &kgo.Record{Topic: topic, Key: []byte(ev.WorkspaceID), Value: b}, err
}

// fill produces n events to topic and waits for their acknowledgements.
func (e *env) fill(ctx context.Context, topic string, n int, seed uint64) error {
	next := events(seed)
	const chunk = 10_000
	for lo := 0; lo < n; lo += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for range min(chunk, n-lo) {
			r, err := record(topic, next())
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		if err := e.Client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("fill %s: %w", topic, err)
		}
	}
	return nil
}

// runningSealer is a sealer running in this process.
type runningSealer struct {
	metrics *prometheus.Registry
	vkey    string
	stop    func()
}

// startSealer runs a sealer on topic after writerGroup, storing into db and
// publishing on checkpoints every interval.
func (e *env) startSealer(ctx context.Context, db, topic, checkpoints, writerGroup string, interval time.Duration) (*runningSealer, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "sealbench")
	if err != nil {
		return nil, err
	}
	cfg := sealer.Defaults()
	cfg.Topic, cfg.CheckpointsTopic, cfg.WriterGroup, cfg.Group = topic, checkpoints, writerGroup, "sealbench-sealer-"+topic
	cfg.SigningKey, cfg.VerifierKeys, cfg.CheckpointInterval = skey, []string{vkey}, interval
	if e.batch > 0 {
		cfg.BatchSize = e.batch
	}
	cfg.Sample, cfg.Audit = e.sample, e.audit
	reg := prometheus.NewRegistry()
	s, err := sealer.New(cfg, e.Kafka.Options(), sealer.NewClickHouseStore(e.Conn, db), nil,
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), reg, time.Now)
	if err != nil {
		return nil, err
	}
	// Its queries are logged, so that the rows its lookups read can be
	// counted (sealerReads).
	sctx, cancel := context.WithCancel(clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"log_queries": 1})))
	done := make(chan struct{})
	go func() { _ = s.Run(sctx); close(done) }()
	return &runningSealer{metrics: reg, vkey: vkey, stop: func() { cancel(); <-done }}, nil
}

// counter sums a counter's samples in reg (0 when absent).
func counter(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// waitFor polls cond every 20 ms until it holds, ctx ends or within passed.
func waitFor(ctx context.Context, within time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(within)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if time.Now().After(deadline) {
			return errors.New(what + ": not within " + within.String())
		}
	}
	return nil
}
