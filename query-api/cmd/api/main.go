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
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/labstack/echo/v4"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/service"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/query-api/api"
	"github.com/audittrail/audittrail/query-api/settings"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/web"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func main() { service.Main("api", run) }

// policyMaxAge is how long the API serves its copy of the retention
// policies before reading them again: a change by the operator is served
// within it, without a restart.
const policyMaxAge = 10 * time.Second

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

	policies := retentionpolicy.NewCache(conn, chc.Database, days, policyMaxAge, time.Now)
	events := store.New(conn, chc.Database, days, time.Now).WithPolicies(policies).WithSlotCache(c.CacheEntries, int64(c.CacheMB)<<20, reg)
	e := httpserver.New(httpserver.Options{Name: "api", Log: log, Reg: reg, Ready: schemaReady(conn, chc.Database), TrustedProxies: c.Proxies})
	api.New(api.Options{
		Retention:    policies,
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
	ae, err := adminServer(c, conn, rec, log)
	if err != nil {
		return err
	}
	log.Info("read api listening", "addr", c.Addr, "algorithms", c.Keys.Algorithms(), "export_topic", kc.Topic)
	return serve(ctx, e, c.Addr, ae, c.Admin.Addr, log)
}

// serve serves the owners' API and, when configured, the admin API on its
// own listener; either failing stops both.
func serve(ctx context.Context, e *echo.Echo, addr string, ae *echo.Echo, adminAddr string, log *slog.Logger) error {
	if ae == nil {
		return httpserver.Serve(ctx, e, addr, httpserver.Listening(log, "http"))
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	adminErr := make(chan error, 1)
	go func() {
		err := httpserver.Serve(ctx, ae, adminAddr, httpserver.Listening(log, "admin"))
		stop()
		adminErr <- err
	}()
	log.Info("admin api listening", "addr", adminAddr)
	err := httpserver.Serve(ctx, e, addr, httpserver.Listening(log, "http"))
	stop()
	return errors.Join(err, <-adminErr)
}

// schemaReady is the API's readiness: ClickHouse answers and holds every
// migration and every table of the schema. The API reads the schema but
// leaves changing it to the migrate job and the writer, so until they have
// run it reports not ready (with the missing versions or tables) rather
// than failing reads.
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
