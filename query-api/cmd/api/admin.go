package main

// The admin API's listener: operators' retention, legal holds and archive
// restores, on AUDITTRAIL_ADMIN_ADDR (off when empty), never on the
// owners' listener.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/admin"
	"github.com/audittrail/audittrail/query-api/verify"
)

// adminConfig is the admin API's part of the configuration.
type adminConfig struct {
	Addr       string
	Operators  admin.Operators
	ArchiveDir string
}

// adminFromEnv reads the admin API's variables; addr is the owners' API's
// listen address, which the admin API may not share.
func adminFromEnv(env *config.Env, addr string) (adminConfig, error) {
	c := adminConfig{Addr: config.AdminAddr.Get(env), ArchiveDir: config.ArchiveDir.Get(env)}
	var errs []error
	if c.ArchiveDir != "" && !filepath.IsAbs(c.ArchiveDir) {
		errs = append(errs, config.ArchiveDir.Invalid(c.ArchiveDir))
	}
	tokens := config.AdminTokens.Get(env)
	if c.Addr == "" {
		return c, errors.Join(errs...)
	}
	errs = append(errs, checkAdminAddr(c.Addr, addr, config.AdminAllowRemote.Get(env)))
	if len(tokens) == 0 {
		errs = append(errs, fmt.Errorf("%s is set, so %s is required: %s", config.AdminAddr.Name, config.AdminTokens.Name, config.AdminTokens.Accepts))
	}
	ops, err := admin.ParseOperators(tokens)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", config.AdminTokens.Name, err))
	}
	c.Operators = ops
	return c, errors.Join(errs...)
}

// adminServer returns the admin API's echo, or nil when it is off.
func adminServer(c apiConfig, conn driver.Conn, rec admin.Emitter, log *slog.Logger) (*echo.Echo, error) {
	if c.Admin.Addr == "" {
		return nil, nil
	}
	o := admin.Options{Operators: c.Admin.Operators, Emitter: rec, Log: log.With("listener", "admin"),
		Policies: admin.NewClickHousePolicies(conn, c.ClickHouse.Database, c.RetentionDays).OnCluster(c.ClickHouse.Cluster)}
	if c.Admin.ArchiveDir != "" {
		cvs, err := verify.Verifiers(c.LogKeys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.VerifierKeys.Name, err)
		}
		mvs, err := verify.Verifiers(c.ManifestKeys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.ManifestVerifierKeys.Name, err)
		}
		o.Restorer = admin.NewRestorer(c.Admin.ArchiveDir, conn, c.ClickHouse.Database, cvs, mvs, c.LogOrigin)
	}
	// A restore proves and inserts a day of events before it answers.
	limits := httpserver.Limits{WriteTimeout: 15 * time.Minute}
	e := httpserver.New(httpserver.Options{Name: "admin", Log: log.With("listener", "admin"), TrustedProxies: c.Proxies, Limits: limits})
	admin.Register(e, o)
	return e, nil
}

// checkAdminAddr refuses an admin address that shares the owners' port
// (on the same or a wildcard host), and one that is not loopback unless
// remote access is allowed (the admin API speaks plain HTTP). Port 0 on
// both is no conflict: the kernel gives each listener a port of its own,
// which each logs (httpserver.Listening).
func checkAdminAddr(adminAddr, apiAddr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(adminAddr)
	if err != nil || port == "" {
		return config.AdminAddr.Invalid(adminAddr)
	}
	apiHost, apiPort, err := net.SplitHostPort(apiAddr)
	if err == nil && port == apiPort && port != "0" && (host == apiHost || wildcard(host) || wildcard(apiHost)) {
		return config.AdminAddr.Errorf(adminAddr, "a port other than "+config.APIAddr.Name+"'s: the admin API has its own listener")
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) || allowRemote {
		return nil
	}
	return config.AdminAddr.Errorf(adminAddr, "a loopback address (127.0.0.1:8085): the admin API speaks plain HTTP; to listen elsewhere behind TLS, set "+config.AdminAllowRemote.Name+"=true")
}

func wildcard(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}
