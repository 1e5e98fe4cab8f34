// Package main is the status command: the running stack at a glance, for
// scripts/services status and the runbook (deploy/monitoring/RUNBOOK.md).
//
// It prints each service's health (GET /readyz on the addresses of
// AUDITTRAIL_WRITER_ADDR, AUDITTRAIL_FORWARDER_ADDR, AUDITTRAIL_INGEST_ADDR,
// AUDITTRAIL_API_ADDR and AUDITTRAIL_SEALER_ADDR), the lag of the writer's,
// the forwarder's and the sealer's consumer groups on the events topic, the records held by the two
// dead-letter topics and the oldest event still stored in ClickHouse, with
// the retention window. Configuration comes from the AUDITTRAIL_* variables
// the services read (see docs/configuration.md). It exits 0 when every
// part answered, 1 when any did not (each failure is printed in its line).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

func main() {
	ok, err := run(context.Background(), os.Stdout, config.FromOS(), time.Now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "status:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// settings is what status reads of the configuration.
type settings struct {
	services              []service
	kafka                 kafkaconn.Config
	writerGroup, fwdGroup string
	sealerGroup           string
	writerDLQ, fwdDLQ     string
	clickhouse            chconn.Config
	retentionDays         int
}

type service struct{ name, addr string }

func load(env *config.Env) (settings, error) {
	s := settings{
		services: []service{
			{"writer", config.WriterAddr.Get(env)}, {"forwarder", config.ForwarderAddr.Get(env)},
			{"ingest", config.IngestAddr.Get(env)}, {"api", config.APIAddr.Get(env)},
			{"sealer", config.SealerAddr.Get(env)},
		},
		kafka:       kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions),
		writerGroup: config.WriterGroup.Get(env), fwdGroup: config.ForwarderGroup.Get(env), sealerGroup: config.SealerGroup.Get(env),
		writerDLQ: config.WriterDLQTopic.Get(env), fwdDLQ: config.ForwarderDLQTopic.Get(env),
		clickhouse:    chconn.FromEnv(env),
		retentionDays: config.RetentionDays.Get(env),
	}
	return s, errors.Join(env.Err(), config.CheckUnknown(), s.kafka.Validate(), s.clickhouse.Validate())
}

func run(ctx context.Context, w io.Writer, env *config.Env, now func() time.Time) (bool, error) {
	s, err := load(env)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(w, "audittrail status at %s\n", now().UTC().Format(time.RFC3339))
	ok := printServices(ctx, w, s.services)
	ok = printKafka(ctx, w, s) && ok
	ok = printOldest(ctx, w, s, now()) && ok
	return ok, nil
}

// printServices prints each service's readiness.
func printServices(ctx context.Context, w io.Writer, services []service) bool {
	fmt.Fprintln(w, "\nservices (GET /readyz)")
	client := &http.Client{Timeout: 3 * time.Second}
	ok := true
	for _, sv := range services {
		state := ready(ctx, client, sv.addr)
		ok = ok && state == "ready"
		fmt.Fprintf(w, "  %-10s %-22s %s\n", sv.name, sv.addr, state)
	}
	return ok
}

func ready(ctx context.Context, client *http.Client, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "bad address: " + err.Error()
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return "bad address: " + err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return "unreachable"
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return "ready"
	}
	return fmt.Sprintf("not ready (%d): %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// printKafka prints the consumer groups' lag and the dead-letter counts.
func printKafka(ctx context.Context, w io.Writer, s settings) bool {
	cl, err := kgo.NewClient(s.kafka.Options()...)
	if err != nil {
		fmt.Fprintf(w, "\nkafka (%s): %v\n", strings.Join(s.kafka.Brokers, ","), err)
		return false
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fmt.Fprintf(w, "\nconsumer groups on %s (records behind the end of each partition)\n", s.kafka.Topic)
	ok := true
	lags, err := adm.Lag(ctx, s.writerGroup, s.fwdGroup, s.sealerGroup)
	if err != nil {
		fmt.Fprintf(w, "  unavailable: %v\n", err)
		ok = false
	}
	for _, g := range []string{s.writerGroup, s.fwdGroup, s.sealerGroup} {
		line, gok := groupLine(lags[g], s.kafka.Topic)
		ok = ok && gok
		fmt.Fprintf(w, "  %-28s %s\n", g, line)
	}
	fmt.Fprintln(w, "\ndead letters (records in the topic)")
	ends, err := adm.ListEndOffsets(ctx, s.writerDLQ, s.fwdDLQ)
	if err == nil {
		var starts kadm.ListedOffsets
		starts, err = adm.ListStartOffsets(ctx, s.writerDLQ, s.fwdDLQ)
		for _, t := range []string{s.writerDLQ, s.fwdDLQ} {
			fmt.Fprintf(w, "  %-28s %s\n", t, deadLetters(t, starts, ends))
		}
	}
	if err != nil {
		fmt.Fprintf(w, "  unavailable: %v\n", err)
		ok = false
	}
	return ok
}

// groupLine describes a group's lag on topic: the total, the members and
// each partition's lag.
func groupLine(g kadm.DescribedGroupLag, topic string) (string, bool) {
	if err := g.Error(); err != nil {
		return "unavailable: " + err.Error(), false
	}
	if g.State == "Dead" || g.State == "" {
		return "no such group (never committed)", true
	}
	var parts []string
	total := int64(0)
	for _, l := range g.Lag.Sorted() {
		if l.Topic != topic {
			continue
		}
		if l.Err != nil {
			parts = append(parts, fmt.Sprintf("p%d=%v", l.Partition, l.Err))
			continue
		}
		total += l.Lag
		parts = append(parts, fmt.Sprintf("p%d=%d", l.Partition, l.Lag))
	}
	return fmt.Sprintf("lag %d, %s, %d members (%s)", total, strings.ToLower(g.State), len(g.Members), strings.Join(parts, " ")), true
}

// deadLetters is the number of records topic holds: end minus start
// offsets over its partitions.
func deadLetters(topic string, starts, ends kadm.ListedOffsets) string {
	e, ok := ends[topic]
	if !ok {
		return "no such topic"
	}
	n := int64(0)
	ids := make([]int, 0, len(e))
	for p, end := range e {
		if end.Err != nil {
			return end.Err.Error()
		}
		n += end.Offset - starts[topic][p].Offset
		ids = append(ids, int(p))
	}
	sort.Ints(ids)
	return fmt.Sprintf("%d in %d partitions", n, len(ids))
}

// printOldest prints the oldest event still stored, from the oldest
// partition of the events table (a week, or a day before migration 5).
func printOldest(ctx context.Context, w io.Writer, s settings, now time.Time) bool {
	fmt.Fprintf(w, "\nstorage (%s %s.%s)\n", s.clickhouse.Addr, s.clickhouse.Database, migrations.Table)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	oldest, err := oldestEvent(ctx, s.clickhouse)
	switch {
	case err != nil:
		fmt.Fprintf(w, "  unavailable: %v\n", err)
		return false
	case oldest.IsZero():
		fmt.Fprintf(w, "  oldest stored event: none (the table is empty); retention %d days\n", s.retentionDays)
	default:
		age := now.Sub(oldest)
		fmt.Fprintf(w, "  oldest stored event: %s (%.1f days ago); retention %d days\n",
			oldest.UTC().Format(time.RFC3339), age.Hours()/24, s.retentionDays)
	}
	return true
}

func oldestEvent(ctx context.Context, c chconn.Config) (time.Time, error) {
	conn, err := chconn.Open(ctx, c)
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close()
	// The oldest partition: a week (its Monday's day number, the events
	// layout of migration 5) or, before that migration, a day (YYYYMMDD).
	var first uint64
	row := conn.QueryRow(ctx, "SELECT min(toUInt64(partition_id)) FROM system.parts WHERE database = ? AND table = ? AND active",
		c.Database, migrations.Table)
	if err := row.Scan(&first); err != nil {
		return time.Time{}, fmt.Errorf("list partitions: %w", err)
	}
	if first == 0 {
		return time.Time{}, nil
	}
	where := "toUInt32(toMonday(timestamp)) = ?"
	if first >= 10000000 {
		where = "toYYYYMMDD(timestamp) = ?"
	}
	var oldest time.Time
	q := fmt.Sprintf("SELECT min(timestamp) FROM %s.%s WHERE %s", c.Database, migrations.Table, where)
	if err := conn.QueryRow(ctx, q, uint32(first)).Scan(&oldest); err != nil {
		return time.Time{}, fmt.Errorf("oldest event: %w", err)
	}
	return oldest, nil
}
