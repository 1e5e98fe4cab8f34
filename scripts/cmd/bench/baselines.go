package main

// The baselines the writer is compared with, measured in the same run:
// clickhouse-client inserting the same rows, plain franz-go producing the
// same records (ClickHouse's own Kafka table engine is in engine.go).

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
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

// clientCompression are the clickhouse-client flags that compress its
// blocks as the writer's connection does (method is
// chconn.Config.CompressionMethod): the client compresses with LZ4 unless
// told otherwise.
func clientCompression(method string) []string {
	switch method {
	case "none":
		return []string{"--compression", "0"}
	case "lz4":
		return nil
	default:
		return []string{"--network_compression_method", method}
	}
}

// clientInsert runs clickhouse-client reading the rows from a file, as an
// operator loading them would.
func clientInsert(ctx context.Context, e *env, table, rowsFile string, n int) (float64, error) {
	in, err := os.Open(rowsFile)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	args := append(e.ClientArgs(), clientCompression(e.ClickHouse.CompressionMethod())...)
	args = append(args, "--log_queries", "1") // its CPU in system.query_log, as the writer's (see queryCPU)
	cmd := exec.CommandContext(ctx, "clickhouse-client", append(args, "--query", "INSERT INTO "+table+" FORMAT JSONEachRow")...)
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
