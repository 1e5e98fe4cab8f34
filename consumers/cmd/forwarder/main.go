// Package main is the forwarder command, which runs the audit forwarding
// consumer group.
//
// It delivers the audit events of workspaces with forwarding enabled to
// their event-streams sources and posts their chat alerts. It reads the
// writer's id registry in ClickHouse so that resends of stored ids are not
// forwarded, but keeps forwarding while ClickHouse is down. Configuration
// comes from AUDITTRAIL_* variables (see docs/configuration.md).
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/internal/service"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Decoding, the pipeline and encoding leave short-lived garbage per
		// event: collecting less often takes about 11% less CPU per record
		// (BenchmarkForwardPath, GOGC=300 against 100) for a larger heap,
		// which MaxInFlight bounds. GOGC and GOMEMLIMIT still override.
		debug.SetGCPercent(300)
	}
	service.Main("forwarder", run)
}

func run(ctx context.Context, log *slog.Logger, reg *prometheus.Registry) error {
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	chc := chconn.FromEnv(env)
	fc := forward.FromEnv(env, kc.Topic)
	addr := config.ForwarderAddr.Get(env)
	if err := errors.Join(env.Err(), config.CheckUnknown(), kc.Validate(), chc.Validate(), fc.Validate(), config.ForwarderAddr.Check(addr)); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	kc.ClientID = "audittrail-forwarder"
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := kvtopic.Ensure(tctx, kc.Options(), fc.SettingsTopic)
	cancel()
	if err != nil {
		return err
	}
	em, err := emitter.New(emitter.Config{Topic: kc.Topic}, kc.Options(), time.Now)
	if err != nil {
		return err
	}
	defer em.Close()

	// Only the id registry is read from ClickHouse: the pool connects when
	// partitions are assigned, and neither starting nor readiness waits
	// for it (forwarding goes on while ClickHouse is down).
	chc.MaxOpenConns = 2
	conn, err := chconn.Dial(chc)
	if err != nil {
		return err
	}
	defer conn.Close()

	f, err := forward.New(fc, forward.Deps{KafkaOpts: kc.Options(), Registry: idwindow.NewRegistry(conn, chc.Database), Emitter: em, Log: log, Reg: reg, Now: time.Now})
	if err != nil {
		return err
	}
	tctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	err = kafkaconn.EnsureTopics(tctx, f.Client(), kc.Partitions, nil, kc.Topic, fc.DeadLetterTopic)
	cancel()
	if err != nil {
		return err
	}

	// Ready when Kafka is: ClickHouse being down does not stop forwarding.
	e := httpserver.New(httpserver.Options{Name: "forwarder", Log: log, Reg: reg, Ready: f.Client().Ping})
	var wg sync.WaitGroup
	srvErr := make(chan error, 1)
	wg.Go(func() { srvErr <- httpserver.Serve(ctx, e, addr, httpserver.Listening(log, "http")) })

	log.Info("forwarder consuming", "topic", fc.Topic, "group", fc.Group, "settings", fc.SettingsTopic, "addr", addr, "clickhouse", chc.Addr)
	runErr := f.Run(ctx)
	stop()
	wg.Wait()
	return errors.Join(runErr, <-srvErr)
}
