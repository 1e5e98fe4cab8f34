// Package stacktest gives each integration test its own database and topics.
//
// They live on the real servers that scripts/test starts: a fresh ClickHouse
// database with the schema applied, and fresh Kafka topics, each removed
// when the test ends. Tests never share tables or topics.
//
// Integration tests run when AUDITTRAIL_INTEGRATION=1 (proctest.Require);
// when it is set, an unreachable server fails the test rather than
// skipping it.
package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Suffix returns a random suffix for names of test resources.
func Suffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ClickHouseConfig returns the server configuration from the environment
// with a fresh database name (not yet created).
func ClickHouseConfig(t testing.TB) chconn.Config {
	c := chconn.Defaults()
	c.Addr = config.ClickHouseAddr.Get(config.FromOS())
	c.Database = "test_" + Suffix()
	return c
}

// ClickHouseConn opens a connection to the test server without creating a
// database; the caller closes it.
func ClickHouseConn(t testing.TB) (driver.Conn, chconn.Config) {
	t.Helper()
	cfg := ClickHouseConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		t.Errorf("clickhouse: %v", err)
		return nil, cfg
	}
	return conn, cfg
}

// UnmigratedClickHouse returns a connection (skipping t unless integration
// tests are enabled) and a database name nothing has created yet; the
// database is dropped and the connection closed at cleanup.
func UnmigratedClickHouse(t testing.TB) (driver.Conn, chconn.Config) {
	t.Helper()
	proctest.Require(t)
	conn, cfg := ClickHouseConn(t)
	if conn == nil {
		t.FailNow()
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		_ = conn.Close()
	})
	return conn, cfg
}

// ClickHouse returns a connection and a fresh database holding the migrated
// schema with the given retention; the database is dropped at cleanup.
func ClickHouse(t testing.TB, retentionDays int) (driver.Conn, chconn.Config) {
	t.Helper()
	proctest.Require(t)
	cfg := ClickHouseConfig(t)
	// No deadline here: the driver may close a pooled connection when the
	// context of its last query is cancelled after the query returned.
	ctx := context.Background()
	conn, err := chconn.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("clickhouse: %v (is it running? scripts/services up)", err)
	}
	if _, err := migrations.Apply(ctx, conn, migrations.Options{Database: cfg.Database, RetentionDays: retentionDays}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	return conn, cfg
}

// Brokers returns the Kafka bootstrap addresses from the environment.
func Brokers() []string {
	return config.KafkaBrokers.Get(config.FromOS())
}

// Topics creates fresh topics with the given partition count, named
// prefix-<suffix> for each prefix, and deletes them at cleanup.
func Topics(t testing.TB, partitions int, prefixes ...string) []string {
	t.Helper()
	proctest.Require(t)
	sfx := Suffix()
	names := make([]string, len(prefixes))
	for i, p := range prefixes {
		names[i] = p + "-" + sfx
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(Brokers()...))
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kafkaconn.EnsureTopics(ctx, cl, partitions, nil, names...); err != nil {
		cl.Close()
		t.Fatalf("create topics (is Kafka running? scripts/services up): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, names...)
		cl.Close()
	})
	return names
}

// Batcher is what InsertEvents needs of a connection: a driver.Conn, or
// the in-process current ClickHouse of internal/chdbtest.
type Batcher interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// InsertEvents writes events straight into the test database's events
// table, as the writer would.
func InsertEvents(t testing.TB, conn Batcher, database string, events ...event.Event) {
	t.Helper()
	rows := make([]migrations.Row, len(events))
	for i := range events {
		rows[i] = migrations.RowOf(&events[i])
	}
	ctx := context.Background() // see migrations.record: no cancellation for batches
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", database, migrations.Table, strings.Join(migrations.InsertColumns, ", ")))
	if err != nil {
		t.Fatalf("prepare insert: %v", err)
	}
	for i := range rows {
		if err := batch.Append(rows[i].Values()...); err != nil {
			_ = batch.Abort()
			t.Fatalf("append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("insert: %v", err)
	}
}

// VisibleIDs returns, for each "workspace/id", how many rows of it a reader
// sees when it reads as the API does (copies of one event collapsed with
// LIMIT 1 BY timestamp_ns, id). A count above 1 is a visible duplicate.
func VisibleIDs(t testing.TB, conn driver.Conn, database string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT workspace_id, id, count() FROM (
    SELECT workspace_id, id FROM %s.%s LIMIT 1 BY workspace_id, timestamp_ns, id
) GROUP BY workspace_id, id`, database, migrations.Table))
	if err != nil {
		t.Fatalf("read ids: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ws, id string
		var n uint64
		if err := rows.Scan(&ws, &id, &n); err != nil {
			t.Fatalf("scan ids: %v", err)
		}
		out[ws+"/"+id] = int(n)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read ids: %v", err)
	}
	return out
}

// Querier runs a query (a driver.Conn, or a narrower connection).
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Strings runs query, whose rows are one String column, and returns the
// values in order.
func Strings(t testing.TB, conn Querier, query string, args ...any) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("scan: %v", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}
