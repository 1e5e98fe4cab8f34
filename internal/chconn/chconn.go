// Package chconn opens ClickHouse connections from the
// AUDITTRAIL_CLICKHOUSE_* configuration.
//
// Connections use the native protocol. Every component that talks to
// ClickHouse opens its connection here, so options live in one place.
// EnsureSchema is how a service readies the schema at start.
package chconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/internal/config"
)

// Config locates the ClickHouse server and database.
type Config struct {
	Addr     string // host:port of the native protocol
	Database string
	Username string
	Password string
	// DialTimeout bounds connecting; ReadTimeout bounds one query's wait for
	// data from the server.
	DialTimeout time.Duration
	ReadTimeout time.Duration
	// MaxOpenConns bounds the connection pool.
	MaxOpenConns int
	// Compression is the native protocol's block compression: "auto" (the
	// default: none when Addr is a loopback address, where compressing
	// only costs CPU on both sides, lz4 otherwise), "lz4", "zstd"
	// (smaller, more CPU) or "none".
	Compression string
	// Cluster names the ClickHouse cluster (remote_servers) the schema lives
	// on; empty for a single server. With a cluster, inserts into the
	// Distributed tables return only once every shard stored its rows
	// (insert_distributed_sync), so a writer commits nothing that is not
	// durable on the shards.
	Cluster string
}

// Defaults returns the configuration for a server on loopback: the
// declared defaults of the config.ClickHouse* variables.
func Defaults() Config {
	return Config{
		Addr: config.ClickHouseAddr.Default, Database: config.ClickHouseDatabase.Default,
		Username: config.ClickHouseUser.Default, Compression: config.ClickHouseCompression.Default,
		DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Minute, MaxOpenConns: 16,
	}
}

// FromEnv reads the config.ClickHouse* variables (address, database, user,
// password, compression and cluster).
func FromEnv(e *config.Env) Config {
	c := Defaults()
	c.Addr = config.ClickHouseAddr.Get(e)
	c.Database = config.ClickHouseDatabase.Get(e)
	c.Username = config.ClickHouseUser.Get(e)
	c.Password = config.ClickHousePassword.Get(e)
	c.Compression = config.ClickHouseCompression.Get(e)
	c.Cluster = config.ClickHouseCluster.Get(e)
	return c
}

// Validate reports configuration that cannot work.
func (c Config) Validate() error {
	errs := []error{config.ClickHouseAddr.Check(c.Addr)}
	if !validIdent(c.Database) {
		errs = append(errs, config.ClickHouseDatabase.Invalid(c.Database))
	}
	if c.Compression != "" {
		errs = append(errs, config.ClickHouseCompression.Check(c.Compression))
	}
	if c.Cluster != "" && !validIdent(c.Cluster) {
		errs = append(errs, config.ClickHouseCluster.Invalid(c.Cluster))
	}
	return errors.Join(errs...)
}

// CompressionMethod is the compression the connection uses: Compression,
// with "auto" (and the zero Config's "") resolved for Addr.
func (c Config) CompressionMethod() string {
	if c.Compression != "auto" && c.Compression != "" {
		return c.Compression
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		host = c.Addr
	}
	if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
		return "none"
	}
	return "lz4"
}

// compressions maps a compression method to the driver's option.
var compressions = map[string]*clickhouse.Compression{
	"lz4":  {Method: clickhouse.CompressionLZ4},
	"zstd": {Method: clickhouse.CompressionZSTD},
	"none": nil,
}

func validIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Open connects to the server (without selecting the database, which may not
// exist yet) and pings it.
func Open(ctx context.Context, c Config) (driver.Conn, error) {
	conn, err := Dial(c)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ping clickhouse %s: %w", c.Addr, err)
	}
	return conn, nil
}

// Dial returns a connection pool without connecting: each query connects
// when it needs to, so a server that is down fails queries, not Dial. For
// components that must keep working without ClickHouse.
func Dial(c Config) (driver.Conn, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var settings clickhouse.Settings
	if c.Cluster != "" {
		settings = clickhouse.Settings{"insert_distributed_sync": 1}
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         []string{c.Addr},
		Protocol:     clickhouse.Native,
		Auth:         clickhouse.Auth{Database: "default", Username: c.Username, Password: c.Password},
		DialTimeout:  c.DialTimeout,
		ReadTimeout:  c.ReadTimeout,
		MaxOpenConns: c.MaxOpenConns,
		MaxIdleConns: c.MaxOpenConns,
		Compression:  compressions[c.CompressionMethod()],
		Settings:     settings,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", c.Addr, err)
	}
	return conn, nil
}
