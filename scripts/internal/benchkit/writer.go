package benchkit

// The writer run in the benchmark's process, configured as
// consumers/cmd/writer configures it.

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/config"
)

// Writer is a writer running in this process.
type Writer struct {
	// Config is what it runs with.
	Config writer.Config
	// Metrics holds its metrics.
	Metrics *prometheus.Registry
	cancel  context.CancelFunc
	done    chan error
}

// StartWriter runs a writer with the writer's defaults, or what
// AUDITTRAIL_WRITER_* set (to compare settings), reading topic as group,
// dead-lettering to topic-dlq and storing into db over conn. A batchAge
// other than 0 replaces the configured one.
func (b *Bench) StartWriter(ctx context.Context, conn driver.Conn, db, topic, group string, batchAge time.Duration) (*Writer, error) {
	cfg, err := WriterConfig(topic, group, batchAge)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	w, err := writer.New(cfg, b.Kafka.Options(), writer.NewClickHouseSink(conn, db),
		slog.New(slog.NewTextHandler(io.Discard, nil)), reg, nil)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	run := &Writer{Config: cfg, Metrics: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- w.Run(wctx) }()
	return run, nil
}

// WriterConfig is the configuration StartWriter runs a writer with.
func WriterConfig(topic, group string, batchAge time.Duration) (writer.Config, error) {
	env := config.FromOS()
	cfg := writer.FromEnv(env, topic)
	if err := env.Err(); err != nil {
		return writer.Config{}, err
	}
	cfg.DeadLetterTopic, cfg.Group = topic+"-dlq", group
	if batchAge != 0 {
		cfg.BatchAge = batchAge
	}
	return cfg, nil
}

// Stop stops the writer and waits until it returned.
func (w *Writer) Stop() {
	w.cancel()
	<-w.done
}

// Gauge is the value of a gauge without labels (0 when absent).
func (w *Writer) Gauge(name string) float64 { return w.Value(name) }

// Value is the value of a gauge or counter without labels (0 when
// absent).
func (w *Writer) Value(name string) float64 {
	mfs, _ := w.Metrics.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}
