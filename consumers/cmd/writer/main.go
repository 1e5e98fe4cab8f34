// Package main is the writer command, which runs the ClickHouse writer and
// the retention job.
//
// It runs the writer consumer group and applies the schema migrations at
// start (with AUDITTRAIL_MIGRATE_AT_START=false it only checks that the
// schema holds every migration it needs, and refuses to start otherwise). Configuration comes from AUDITTRAIL_* variables (see
// docs/configuration.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/service"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Decoding leaves much short-lived garbage: collecting less often
		// stores about 9% more events/s (BenchmarkWriterFromKafka) for a
		// larger heap. GOGC and GOMEMLIMIT still override.
		debug.SetGCPercent(300)
	}
	service.Main("writer", run)
}

func run(ctx context.Context, log *slog.Logger, reg *prometheus.Registry) error {
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	chc := chconn.FromEnv(env)
	wc := writer.FromEnv(env, kc.Topic)
	addr := config.WriterAddr.Get(env)
	every := config.RetentionInterval.Get(env)
	migrate := config.MigrateAtStart.Get(env)
	if err := errors.Join(env.Err(), config.CheckUnknown(), kc.Validate(), chc.Validate(), wc.Validate(),
		config.WriterAddr.Check(addr), config.RetentionInterval.Check(every)); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	conn, err := chconn.Open(ctx, chc)
	if err != nil {
		return err
	}
	defer conn.Close()
	arch, err := archiverFromEnv(env, conn, conn, chc.Database)
	if err != nil {
		return err
	}
	applied, err := chconn.EnsureSchema(ctx, conn, migrations.Options{Database: chc.Database, RetentionDays: wc.RetentionDays, Cluster: chc.Cluster}, migrate)
	if err != nil {
		return err
	}
	log.Info("schema ready", "clickhouse", applied.Server.String(), "ttl", applied.Server.SupportsTTL(), "migrated", migrate, "applied", applied.Versions)

	kc.ClientID = "audittrail-writer"
	w, err := writer.New(wc, kc.Options(), writer.NewClickHouseSink(conn, chc.Database).KeepLate(wc.RetentionDays, time.Now), log, reg, time.Now)
	if err != nil {
		return err
	}
	// Read only for events already older than the window on arrival, at
	// most once a second (a hold placed a second ago keeps them), one read
	// at a time, every 5 s at most while reads fail; a copy older than a
	// minute is not used (such events are then stored).
	w.KeepBy(retentionpolicy.NewCache(conn, chc.Database, wc.RetentionDays, time.Second, time.Now).Bound(time.Minute, 5*time.Second))
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = kafkaconn.EnsureTopics(tctx, w.Client(), kc.Partitions, nil, kc.Topic, wc.DeadLetterTopic)
	cancel()
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	enf := retention.New(conn, chc.Database, wc.RetentionDays, time.Now, log).OnCluster(chc.Cluster).SetSettle(retention.DefaultSettle)
	reg.MustRegister(enf.Collectors()...)
	if arch != nil {
		enf.SetArchiver(arch)
		reg.MustRegister(arch.Collectors()...)
		log.Info("archiving events before they expire", "dir", arch.Dir())
	}
	wg.Go(func() { enf.Run(ctx, every) })

	e := httpserver.New(httpserver.Options{Name: "writer", Log: log, Reg: reg, Ready: func(ctx context.Context) error {
		if err := conn.Ping(ctx); err != nil {
			return fmt.Errorf("clickhouse: %w", err)
		}
		return w.Client().Ping(ctx)
	}})
	srvErr := make(chan error, 1)
	wg.Go(func() {
		err := httpserver.Serve(ctx, e, addr, httpserver.Listening(log, "http"))
		if err != nil {
			stop() // without health and metrics the writer is not operable
		}
		srvErr <- err
	})

	log.Info("writer consuming", "topic", wc.Topic, "group", wc.Group, "addr", addr)
	runErr := w.Run(ctx)
	stop()
	wg.Wait()
	return errors.Join(runErr, <-srvErr)
}
