package main

// The run: the database, the API under test, and the order of the
// measurements with their targets.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

func run(o options) error {
	ctx := context.Background()
	srv, err := drillkit.ServersFromEnv()
	if err != nil {
		return err
	}
	srv.ClickHouse.Database = o.database
	conn, err := chconn.Open(ctx, srv.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := load(ctx, conn, srv, o); err != nil {
		return err
	}
	if o.drop {
		defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+o.database) }()
	}
	// The export is recorded on a topic of its own.
	cl, err := kgo.NewClient(srv.Kafka.Options()...)
	if err != nil {
		return err
	}
	err = kafkaconn.EnsureTopics(ctx, cl, 1, nil, exportTopic)
	cl.Close()
	if err != nil {
		return fmt.Errorf("kafka (scripts/services up): %w", err)
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	jwtSecret := hex.EncodeToString(secret)
	if o.layouts {
		return compareLayouts(ctx, o, srv, conn, jwtSecret)
	}
	apiProc, base, err := startAPI(o, o.apiBin, srv, jwtSecret)
	if err != nil {
		return err
	}
	defer func() {
		_ = apiProc.Process.Signal(syscall.SIGTERM)
		_ = apiProc.Wait()
	}()
	b := &bench{o: o, srv: srv, conn: conn, table: o.database + "." + migrations.Table, base: base, pid: apiProc.Process.Pid,
		big: "ws_0", median: fmt.Sprintf("ws_%d", o.workspaces/2)}
	if o.baselineAPIBin != "" {
		baseProc, baseURL, err := startAPI(o, o.baselineAPIBin, srv, jwtSecret)
		if err != nil {
			return err
		}
		defer func() {
			_ = baseProc.Process.Signal(syscall.SIGTERM)
			_ = baseProc.Wait()
		}()
		b.baseline = baseURL
	}
	return b.measureAll(ctx, jwtSecret)
}

// bench is what the measurements need: the database and the API.
type bench struct {
	o           options
	srv         drillkit.Servers
	conn        driver.Conn
	table       string
	base        string // the API's URL
	baseline    string // the baseline API's URL, or ""
	pid         int    // the API's process
	big, median string // the largest and the median workspace
}

// measureAll times the first pages, the timelines, the facets, then the CSV export, and reports a
// missed target as an error.
func (b *bench) measureAll(ctx context.Context, jwtSecret string) error {
	sizes, err := b.describe(ctx)
	if err != nil {
		return err
	}
	tok, err := auth.Mint([]byte(jwtSecret), "usr_bench", "Bench", "bench@example.com",
		map[string]string{b.big: "owner", b.median: "owner"}, 2*time.Hour, time.Now())
	if err != nil {
		return err
	}
	failed := false
	if !b.o.noFirstPages {
		if failed, err = b.firstPages(ctx, tok, sizes); err != nil {
			return err
		}
	}
	if !b.o.noTimeline {
		missed, err := b.timelines(ctx, tok, sizes)
		if err != nil {
			return err
		}
		failed = failed || missed
	}
	if !b.o.noFacets {
		missed, err := b.facets(tok, sizes)
		if err != nil {
			return err
		}
		failed = failed || missed
	}
	if !b.o.noExport {
		ok, err := b.exportRate(ctx, tok)
		if err != nil {
			return err
		}
		failed = failed || !ok
	}
	if failed {
		return errors.New("a target was missed (see above)")
	}
	return nil
}

// describe prints the table's parts and the server's version, and returns
// the events of the big and the median workspace within the window.
func (b *bench) describe(ctx context.Context) (map[string]uint64, error) {
	var parts uint64
	if err := b.conn.QueryRow(ctx, "SELECT count() FROM system.parts WHERE database = ? AND table = ? AND active",
		b.o.database, migrations.Table).Scan(&parts); err != nil {
		return nil, err
	}
	fmt.Printf("%s: %d active parts; ClickHouse %s\n", b.table, parts, serverVersion(ctx, b.conn))
	sizes := map[string]uint64{}
	for _, ws := range []string{b.big, b.median} {
		n, err := b.windowCount(ctx, ws)
		if err != nil {
			return nil, err
		}
		sizes[ws] = n
	}
	return sizes, nil
}

// windowCount is the events of ws within the 90 days' window.
func (b *bench) windowCount(ctx context.Context, ws string) (uint64, error) {
	var n uint64
	err := b.conn.QueryRow(ctx, "SELECT count() FROM "+b.table+" WHERE workspace_id = ? AND timestamp_ns >= ?",
		ws, time.Now().Add(-90*24*time.Hour).UnixNano()).Scan(&n)
	return n, err
}

// firstPages times each shape's first page for the big and the median
// workspace and prints the table; failed is whether a target was missed.
func (b *bench) firstPages(ctx context.Context, tok string, sizes map[string]uint64) (failed bool, err error) {
	fmt.Printf("\nfirst page (limit 50), %d requests each way; ms\n", b.o.requests)
	fmt.Printf("%-9s %-34s %8s %8s %8s %8s  %s\n", "workspace", "filter", "api p50", "api p99", "sql p50", "sql p99", "api p99 <= 1.5 x sql p99 + 10 ms")
	for _, ws := range []string{b.big, b.median} {
		for _, sh := range shapes {
			if !b.o.only.MatchString(ws + " " + sh.name) {
				continue
			}
			r, err := measure(ctx, b.o, b.conn, b.srv, b.base, tok, ws, sh)
			if err != nil {
				return failed, fmt.Errorf("%s %s: %w", ws, sh.name, err)
			}
			ok := r.api.p99 <= 1.5*r.sql.p99+10
			failed = failed || !ok
			fmt.Printf("%-9s %-34s %8.1f %8.1f %8.1f %8.1f  %s\n", fmt.Sprintf("%s(%d)", ws, sizes[ws]), sh.name,
				r.api.p50, r.api.p99, r.sql.p50, r.sql.p99, map[bool]string{true: "ok", false: "FAIL"}[ok])
		}
	}
	return failed, nil
}

// exportRate streams the big workspace's CSV export and prints its rate
// and the API's memory; ok is whether both met their targets.
func (b *bench) exportRate(ctx context.Context, tok string) (ok bool, err error) {
	// Events keep leaving the window while the benchmark runs: count what
	// the export may hold just before and just after it.
	before, err := b.windowCount(ctx, b.big)
	if err != nil {
		return false, err
	}
	rows, secs, peak, err := export(b.base, tok, b.big, b.pid)
	if err != nil {
		return false, err
	}
	after, err := b.windowCount(ctx, b.big)
	if err != nil {
		return false, err
	}
	hwm := procStatus(b.pid, "VmHWM")
	rate := float64(rows) / secs
	fmt.Printf("\nCSV export of %s: %d rows in %.1f s = %.0f rows/s (want >= 100000: %s); API RSS peak during export %.1f MB, VmHWM %.1f MB (want < 100: %s)\n",
		b.big, rows, secs, rate, okText(rate >= 100_000), peak, hwm, okText(hwm < 100))
	if rows < int(after) || rows > int(before) {
		return false, fmt.Errorf("export returned %d rows, the window held %d to %d", rows, after, before)
	}
	return rate >= 100_000 && hwm < 100, nil
}

func serverVersion(ctx context.Context, conn driver.Conn) string {
	v, err := migrations.ServerVersion(ctx, conn)
	if err != nil {
		return "?"
	}
	return v.String()
}

func okText(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}
