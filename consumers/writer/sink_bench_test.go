package writer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// BenchmarkClickHouseSinkInsert measures one native batch insert of 20,000
// realistic rows into the real server (rows/s is reported).
func BenchmarkClickHouseSinkInsert(b *testing.B) {
	conn, ch := stacktest.ClickHouse(b, 90)
	g, err := loadgen.New(loadgen.Config{Workspaces: 100, ZipfS: 1.2, Seed: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]migrations.Row, 20000)
	for i := range rows {
		e := g.Next()
		e.ReceivedAt = time.Now()
		rows[i] = migrations.RowOf(&e)
	}
	sink := writer.NewClickHouseSink(conn, ch.Database)
	b.ResetTimer()
	for b.Loop() {
		if err := sink.Insert(context.Background(), rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rows)*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkWriterFromKafka measures the writer storing 100,000 events that
// are already on a real Kafka topic (events/s is reported).
func BenchmarkWriterFromKafka(b *testing.B) {
	conn, ch := stacktest.ClickHouse(b, 90)
	names := stacktest.Topics(b, 6, "bench-events")
	g, err := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Seed: 1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 100000
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.DefaultProduceTopic(names[0]))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		e := g.Next()
		e.ReceivedAt = time.Now()
		v, _ := event.Marshal(&e)
		recs[i] = &kgo.Record{Key: []byte(e.WorkspaceID), Value: v}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; b.Loop(); i++ {
		db := ch.Database
		cfg := writer.Defaults()
		cfg.Topic, cfg.DeadLetterTopic, cfg.Group = names[0], names[0]+"-dlq", fmt.Sprintf("bench-%s-%d", stacktest.Suffix(), i)
		for _, t := range []string{migrations.Table, migrations.IDsTable} { // the next round stores the same ids again
			if err := conn.Exec(context.Background(), "TRUNCATE TABLE "+db+"."+t); err != nil {
				b.Fatal(err)
			}
		}
		w, err := writer.New(cfg, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, writer.NewClickHouseSink(conn, db),
			slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = w.Run(ctx) }()
		tick := time.NewTicker(10 * time.Millisecond)
		for range tick.C {
			var c uint64
			if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+db+"."+migrations.Table).Scan(&c); err != nil {
				b.Fatal(err)
			}
			if c >= n {
				break
			}
		}
		tick.Stop()
		cancel()
		<-done
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	// The writer's CPU time (this process; ClickHouse's is not counted):
	// steadier than the rate on a shared machine.
	b.ReportMetric((processCPU()-cpu0).Seconds()*1e6/float64(n*b.N), "cpu-s/Mevents")
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
