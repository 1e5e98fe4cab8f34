// Package main is the api command, which runs the read API, the settings API
// and the page.
//
// It reads the trail from ClickHouse and records each CSV export and each
// settings change in the trail through Kafka. Configuration comes from
// AUDITTRAIL_* variables (see docs/configuration.md).
package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/service"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/query-api/api"
	"github.com/audittrail/audittrail/query-api/settings"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/web"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func main() { service.Main("api", run) }

func run(ctx context.Context, log *slog.Logger, reg *prometheus.Registry) error {
	c, err := configFromEnv(config.FromOS())
	if err != nil {
		return err
	}
	chc, kc, days := c.ClickHouse, c.Kafka, c.RetentionDays
	verifier, err := c.Keys.Verifier()
	if err != nil {
		return err
	}

	conn, err := chconn.Open(ctx, chc)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Exports and settings changes are recorded through one emitter; reads
	// work without Kafka.
	rec, err := emitter.New(emitter.Config{Topic: kc.Topic}, kc.Options(), time.Now)
	if err != nil {
		return err
	}
	defer rec.Close()

	events := store.New(conn, chc.Database, days, time.Now)
	e := httpserver.New(httpserver.Options{Name: "api", Log: log, Reg: reg, Ready: schemaReady(conn, chc.Database), TrustedProxies: c.Proxies})
	api.New(api.Options{
		Events:       events,
		Integrity:    store.NewLog(conn, chc.Database),
		VerifierKeys: c.LogKeys,
		ManifestKeys: c.ManifestKeys,
		Origin:       c.LogOrigin,
		Signer:       c.Signer,
		Verifier:     verifier,
		Recorder:     rec,
		Log:          log,
		Reg:          reg,
	}).Register(e)
	sb, err := settings.Start(ctx, kc.Options(), c.SettingsTopic, rec, log)
	if err != nil {
		return err
	}
	defer sb.Close()
	so := sb.Options(verifier, log)
	so.Events = c.Events
	so.Egress = c.Egress
	so.Recent = events // previews read the newest events
	settings.Register(e, so)
	web.Register(e)
	log.Info("read api listening", "addr", c.Addr, "algorithms", c.Keys.Algorithms(), "export_topic", kc.Topic)
	return httpserver.Serve(ctx, e, c.Addr, nil)
}

// schemaReady is the API's readiness: ClickHouse answers and holds every
// migration. The API reads the schema but leaves changing it to the
// migrate job and the writer, so until they have run it reports not ready
// (with the missing versions) rather than failing reads.
func schemaReady(conn driver.Conn, database string) func(context.Context) error {
	var current atomic.Bool
	return func(ctx context.Context) error {
		if err := conn.Ping(ctx); err != nil {
			return err
		}
		if current.Load() {
			return nil
		}
		if err := migrations.Check(ctx, conn, database); err != nil {
			return err
		}
		current.Store(true)
		return nil
	}
}
