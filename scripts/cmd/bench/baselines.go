package main

// The baselines the writer is compared with, measured in the same run:
// clickhouse-client inserting the same rows, plain franz-go producing the
// same records, and ClickHouse's own Kafka table engine consuming them.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/twmb/franz-go/pkg/kgo"
)

// generate makes n events and their two encodings: the contract JSON (what
// producers publish) and the flat table row as JSONEachRow.
func generate(n int) ([]event.Event, [][]byte, [][]byte) {
	g, _ := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Spread: 72 * time.Hour, Seed: 42}, time.Now)
	events := make([]event.Event, n)
	contract := make([][]byte, n)
	flat := make([][]byte, n)
	now := time.Now().UTC()
	for i := range events {
		e := g.Next()
		e.ReceivedAt = now
		events[i] = e
		contract[i], _ = event.Marshal(&e)
		r := migrations.RowOf(&e)
		flat[i], _ = json.Marshal(map[string]any{
			"workspace_id": r.WorkspaceID, "timestamp": r.Timestamp.Format(time.DateTime), "timestamp_ns": r.TimestampNs,
			"id": r.ID, "event": r.Event, "category": r.Category, "actor_type": r.ActorType, "actor_id": r.ActorID,
			"actor_name": r.ActorName, "actor_email": r.ActorEmail, "resource_type": r.ResourceType, "resource_id": r.ResourceID,
			"resource_name": r.ResourceName, "changes": r.Changes, "context_ip": r.ContextIP, "context_user_agent": r.ContextUserAgent,
			"context_request_id": r.ContextRequestID, "properties": r.Properties,
			"received_at": r.ReceivedAt.Format(time.DateTime), "received_at_ns": r.ReceivedAtNs,
		})
	}
	return events, contract, flat
}

// writeRows writes the rows as JSONEachRow to a file in dir, the input of
// clickhouse-client.
func writeRows(dir string, flat [][]byte) (string, error) {
	f, err := os.CreateTemp(dir, "bench-rows-*.json")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, row := range flat {
		_, _ = w.Write(row)
		_ = w.WriteByte('\n')
	}
	if err := cmp.Or(w.Flush(), f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// clientInsert runs clickhouse-client reading the rows from a file, as an
// operator loading them would.
func clientInsert(ctx context.Context, e *env, table, rowsFile string, n int) (float64, error) {
	in, err := os.Open(rowsFile)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	cmd := exec.CommandContext(ctx, "clickhouse-client", append(e.ClientArgs(),
		"--query", "INSERT INTO "+table+" FORMAT JSONEachRow")...)
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("clickhouse-client: %w: %s", err, stderr.String())
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func records(topic string, events []event.Event, values [][]byte) []*kgo.Record {
	recs := make([]*kgo.Record, len(values))
	for i := range values {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(events[i].WorkspaceID), Value: values[i]}
	}
	return recs
}

func produceAll(ctx context.Context, e *env, topic string, events []event.Event, values [][]byte) (float64, error) {
	cl, err := kgo.NewClient(append(e.Kafka.Options(), emitter.ProducerOptions(emitter.Config{Topic: topic, DeliveryTimeout: time.Minute})...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	recs := records(topic, events, values)
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return float64(len(recs)) / time.Since(start).Seconds(), nil
}

func kafkaEngine(ctx context.Context, e *env, topic string, events []event.Event, flat [][]byte, n int) (float64, error) {
	cols := strings.Join(migrations.InsertColumns, ", ")
	stmts := []string{
		fmt.Sprintf("CREATE TABLE %s.engine_target AS %s.%s", e.DB, e.DB, migrations.Table),
		fmt.Sprintf(`CREATE TABLE %s.engine_queue (
    workspace_id String, timestamp DateTime('UTC'), timestamp_ns Int64, id String, event String, category String,
    actor_type String, actor_id String, actor_name String, actor_email String,
    resource_type String, resource_id String, resource_name String, changes String,
    context_ip String, context_user_agent String, context_request_id String, properties String,
    received_at DateTime('UTC'), received_at_ns Int64, sender_credential_id String, sender_producer String
) ENGINE = Kafka SETTINGS kafka_broker_list = '%s', kafka_topic_list = '%s', kafka_group_name = 'bench-engine-%s',
  kafka_format = 'JSONEachRow', kafka_num_consumers = 2`, e.DB, strings.Join(e.Kafka.Brokers, ","), topic, e.sfx),
		fmt.Sprintf("CREATE MATERIALIZED VIEW %s.engine_mv TO %s.engine_target AS SELECT %s, now() AS inserted_at FROM %s.engine_queue", e.DB, e.DB, cols, e.DB),
	}
	for _, s := range stmts {
		if err := e.Conn.Exec(ctx, s); err != nil {
			return 0, fmt.Errorf("kafka engine setup: %w", err)
		}
	}
	defer func() {
		_ = e.Conn.Exec(context.Background(), fmt.Sprintf("DROP TABLE IF EXISTS %s.engine_mv", e.DB))
		_ = e.Conn.Exec(context.Background(), fmt.Sprintf("DROP TABLE IF EXISTS %s.engine_queue", e.DB))
	}()
	// The engine's new group starts at the latest offset: give it time to
	// join before producing.
	time.Sleep(5 * time.Second)
	start := time.Now()
	if _, err := produceAll(ctx, e, topic, events, flat); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		c, err := stored(ctx, e.Conn, e.DB, "engine_target")
		if err != nil {
			return 0, err
		}
		if int(c) >= n {
			return float64(n) / time.Since(start).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("kafka engine stored %d of %d in 3 minutes (see the ClickHouse error log)", c, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
