// Package main is the api command, which runs the read API, the settings API
// and the page.
//
// It reads the trail from ClickHouse and records each CSV export and each
// settings change in the trail through Kafka. Configuration comes from
// AUDITTRAIL_* variables (see docs/configuration.md).
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/query-api/api"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/settings"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/web"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("service", "api")
	if err := run(log); err != nil {
		log.Error("api stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	env := config.FromOS()
	chc := chconn.FromEnv(env)
	kc := kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions)
	kc.ClientID = "audittrail-api"
	addr := env.String("AUDITTRAIL_API_ADDR", "127.0.0.1:8080")
	secret := env.String("AUDITTRAIL_JWT_SECRET", "")
	jwksFile := env.String("AUDITTRAIL_JWKS_FILE", "")
	days := env.Int("AUDITTRAIL_RETENTION_DAYS", 90)
	settingsTopic := env.String("AUDITTRAIL_SETTINGS_TOPIC", topics.Settings)
	egc := egress.FromEnv(env)
	proxies, perr := httpserver.TrustedProxiesFromEnv(env)
	errs := []error{perr}
	if secret != "" && len(secret) < 32 {
		errs = append(errs, errors.New("AUDITTRAIL_JWT_SECRET must be at least 32 characters (HS256 secret for read-API tokens)"))
	}
	if secret == "" && jwksFile == "" {
		errs = append(errs, errors.New("set AUDITTRAIL_JWT_SECRET (HS256 secret, at least 32 characters) or AUDITTRAIL_JWKS_FILE (RS256/EdDSA public keys) to verify read-API tokens"))
	}
	if days < 1 || days > 3650 {
		errs = append(errs, errors.New("AUDITTRAIL_RETENTION_DAYS: want 1-3650"))
	}
	keys := auth.NewKeys([]byte(secret))
	if jwksFile != "" {
		if err := keys.AddJWKSFile(jwksFile); err != nil {
			errs = append(errs, errors.New("AUDITTRAIL_JWKS_FILE: "+err.Error()))
		}
	}
	if err := errors.Join(append(errs, env.Err(), config.CheckUnknown(), chc.Validate(), kc.Validate(), egc.Validate())...); err != nil {
		return err
	}
	verifier, err := keys.Verifier()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	conn, err := chconn.Open(ctx, chc)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := migrations.Apply(ctx, conn, migrations.Options{Database: chc.Database, RetentionDays: days, Cluster: chc.Cluster}); err != nil {
		return err
	}
	// Exports are recorded through the emitter; reads work without Kafka.
	rec, err := emitter.New(emitter.Config{Topic: kc.Topic}, kc.Options(), time.Now)
	if err != nil {
		return err
	}
	defer rec.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e := httpserver.New(httpserver.Options{Name: "api", Log: log, Reg: reg, Ready: conn.Ping, TrustedProxies: proxies})
	api.New(api.Options{
		Events:   store.New(conn, chc.Database, days, time.Now),
		Verifier: verifier,
		Recorder: rec,
		Log:      log,
		Reg:      reg,
	}).Register(e)
	sb, err := settings.Start(ctx, kc.Options(), kc.Topic, settingsTopic, log)
	if err != nil {
		return err
	}
	defer sb.Close()
	so := sb.Options(verifier, log)
	so.Events = config.EventPolicy(env)
	so.Egress = egc
	settings.Register(e, so)
	web.Register(e)
	log.Info("read api listening", "addr", addr, "algorithms", keys.Algorithms(), "export_topic", kc.Topic)
	return httpserver.Serve(ctx, e, addr, nil)
}
