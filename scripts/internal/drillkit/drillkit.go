// Package drillkit holds what the fault drills and the benchmarks share.
//
// The drills (scripts/cmd/drill, scripts/cmd/drillcluster) and the
// benchmarks share finding the repository, the servers the services'
// configuration names (servers.go), posting a batch to the gateway, and
// reading the stored ids the way the API reads them.
package drillkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Root returns the repository root: the working directory or the nearest
// parent holding go.mod.
func Root() (string, error) {
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for ; ; root = filepath.Dir(root) {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return root, nil
		}
		if root == filepath.Dir(root) {
			return "", errors.New("run the drill inside the repository")
		}
	}
}

// Post sends one gateway batch body with the token and returns the ids the
// gateway accepted, in batch order; any answer but 202 is an error.
func Post(ctx context.Context, client *http.Client, url, token string, body []byte) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var out struct {
		IDs []string `json:"ids"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.IDs, nil
}

// Visible returns, for each "workspace/id" stored in database, how many
// events a reader sees when it reads as the API does (copies of one event
// collapsed with LIMIT 1 BY). A count above 1 is a visible duplicate.
func Visible(ctx context.Context, conn driver.Conn, database string) (map[string]int, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT workspace_id, id, count() FROM (
    SELECT workspace_id, id FROM %s.%s LIMIT 1 BY workspace_id, timestamp_ns, id
) GROUP BY workspace_id, id`, database, migrations.Table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ws, id string
		var n uint64
		if err := rows.Scan(&ws, &id, &n); err != nil {
			return nil, err
		}
		out[ws+"/"+id] = int(n)
	}
	return out, rows.Err()
}

// ConsumeRate reads n records from the start of topic with a plain
// franz-go consumer and returns records/s: the baseline a writer is
// compared with. A non-empty group consumes as that group and commits.
func ConsumeRate(ctx context.Context, brokers []string, topic string, n int, group string) (float64, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if group != "" {
		opts = append(opts, kgo.ConsumerGroup(group))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	got := 0
	for got < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return 0, fmt.Errorf("consumed %d of %d: %w", got, n, ctx.Err())
		}
		got += f.NumRecords()
	}
	rate := float64(n) / time.Since(start).Seconds()
	if group == "" {
		return rate, nil
	}
	return rate, cl.CommitUncommittedOffsets(ctx)
}
