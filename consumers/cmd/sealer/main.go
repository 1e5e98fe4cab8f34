// Package main is the sealer command, which builds the workspaces'
// integrity logs and signs their checkpoints (see docs/integrity.md).
//
// It runs the sealer consumer group, applies the schema migrations at
// start (with AUDITTRAIL_MIGRATE_AT_START=false it only checks that the
// schema holds every migration it needs, and refuses to start otherwise)
// and publishes checkpoints on the compacted checkpoints topic.
// Configuration comes from AUDITTRAIL_* variables (see
// docs/configuration.md); AUDITTRAIL_SIGNING_KEY is required.
//
// sealer -generate-key NAME prints a new key pair as the lines
// AUDITTRAIL_SIGNING_KEY=... and AUDITTRAIL_VERIFIER_KEYS=... and exits.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/internal/service"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() {
	generate := flag.String("generate-key", "", "print a new Ed25519 note key pair named `NAME` as "+config.SigningKey.Name+" and "+config.VerifierKeys.Name+" lines, and exit")
	flag.Parse()
	if *generate != "" {
		skey, vkey, err := note.GenerateKey(rand.Reader, *generate)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sealer: -generate-key %q: %v (a name is letters, digits, dots, dashes; no spaces or '+')\n", *generate, err)
			os.Exit(2)
		}
		fmt.Printf("%s=%s\n%s=%s\n", config.SigningKey.Name, skey, config.VerifierKeys.Name, vkey)
		return
	}
	service.Main("sealer", run)
}

func run(ctx context.Context, log *slog.Logger, reg *prometheus.Registry) error {
	env := config.FromOS()
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	chc := chconn.FromEnv(env)
	sc := sealer.FromEnv(env, kc.Topic)
	retentionDays := sc.RetentionDays // checked by sc.Validate
	addr := config.SealerAddr.Get(env)
	migrate := config.MigrateAtStart.Get(env)
	if err := errors.Join(env.Err(), config.CheckUnknown(), kc.Validate(), chc.Validate(), sc.Validate(),
		config.SealerAddr.Check(addr)); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()

	conn, err := chconn.Open(ctx, chc)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := chconn.EnsureSchema(ctx, conn, migrations.Options{Database: chc.Database, RetentionDays: retentionDays, Cluster: chc.Cluster}, migrate); err != nil {
		return err
	}
	kc.ClientID = "audittrail-sealer"
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = kvtopic.Ensure(tctx, kc.Options(), sc.CheckpointsTopic)
	cancel()
	if err != nil {
		return err
	}
	// The checkpoints published so far, which the logs the sealer loads
	// are checked against (ClickHouse's copy could be rewritten).
	published, err := kvtopic.New(kc.Options(), sc.CheckpointsTopic, nil)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := published.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("checkpoints topic not read", "err", err)
			stop()
		}
	})
	if err := published.WaitReady(ctx); err != nil {
		stop()
		wg.Wait()
		return fmt.Errorf("read the checkpoints topic %s: %w", sc.CheckpointsTopic, err)
	}
	s, err := sealer.New(sc, kc.Options(), sealer.NewClickHouseStore(conn, chc.Database), idwindow.NewHistory(conn, chc.Database), log, reg, time.Now)
	if err != nil {
		stop()
		wg.Wait()
		return err
	}
	s.WithPublished(published.Get)

	e := httpserver.New(httpserver.Options{Name: "sealer", Log: log, Reg: reg, Ready: func(ctx context.Context) error {
		if err := conn.Ping(ctx); err != nil {
			return fmt.Errorf("clickhouse: %w", err)
		}
		return s.Client().Ping(ctx)
	}})
	srvErr := make(chan error, 1)
	wg.Go(func() {
		err := httpserver.Serve(ctx, e, addr, httpserver.Listening(log, "http"))
		if err != nil {
			stop()
		}
		srvErr <- err
	})
	log.Info("sealer consuming", "topic", sc.Topic, "group", sc.Group, "after_group", sc.WriterGroup, "addr", addr)
	runErr := s.Run(ctx)
	stop()
	wg.Wait()
	return errors.Join(runErr, <-srvErr)
}
