// Package benchkit holds what the benchmarks under scripts/cmd share.
//
// That is their own slice of the Kafka and ClickHouse servers that the
// services' configuration names (drillkit.ServersFromEnv), a writer running
// in the benchmark's process, and writing the results.
package benchkit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// Bench is a benchmark's own database, holding the schema, and a Kafka
// client on the servers. Close drops the database.
type Bench struct {
	drillkit.Servers
	DB     string      // the database, created by Open
	Conn   driver.Conn // to the ClickHouse server
	Client *kgo.Client // to the brokers
	Admin  *kadm.Client
	// ServerVersion is the ClickHouse server's version.
	ServerVersion string
}

// Open creates database db with the schema (90 days' retention) on the
// configured servers. The connection has conns connections whose queries
// may take readTimeout.
func Open(ctx context.Context, db string, conns int, readTimeout time.Duration) (*Bench, error) {
	s, err := drillkit.ServersFromEnv()
	if err != nil {
		return nil, err
	}
	s.ClickHouse.Database, s.ClickHouse.MaxOpenConns, s.ClickHouse.ReadTimeout = db, conns, readTimeout
	b := &Bench{Servers: s, DB: db}
	if b.Conn, err = chconn.Open(ctx, s.ClickHouse); err != nil {
		return nil, err
	}
	applied, err := migrations.Apply(ctx, b.Conn, migrations.Options{Database: db, RetentionDays: 90})
	if err != nil {
		b.Conn.Close()
		return nil, err
	}
	b.ServerVersion = applied.Server.String()
	if b.Client, err = kgo.NewClient(s.Kafka.Options()...); err != nil {
		b.Close()
		return nil, err
	}
	b.Admin = kadm.NewClient(b.Client)
	return b, nil
}

// Close drops the database and closes the connections.
func (b *Bench) Close() {
	_ = b.Conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+b.DB)
	b.Conn.Close()
	if b.Client != nil {
		b.Client.Close()
	}
}

// WriteResults writes report as name.json and md as name.md into dir,
// creating it when missing.
func WriteResults(dir, name string, report any, md string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, name+".json"), append(js, '\n'), 0o644),
		os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644),
	)
}
