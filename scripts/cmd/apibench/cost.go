package main

// What a layout costs the writer: rows and bytes per stored event, and
// the server's time to insert the same rows with and without the lookup
// tables' views.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// printCosts prints each table's rows and bytes per stored event.
func printCosts(ctx context.Context, conn driver.Conn, db string) error {
	rows, err := conn.Query(ctx, `SELECT table, count(), sum(rows), sum(bytes_on_disk), sum(data_uncompressed_bytes) FROM system.parts
WHERE database = ? AND active AND table NOT IN ('schema_migrations') GROUP BY table ORDER BY table`, db)
	if err != nil {
		return err
	}
	defer rows.Close()
	type cost struct {
		table                 string
		parts, n, disk, plain uint64
	}
	var costs []cost
	var events uint64
	for rows.Next() {
		var c cost
		if err := rows.Scan(&c.table, &c.parts, &c.n, &c.disk, &c.plain); err != nil {
			return err
		}
		if c.table == migrations.Table {
			events = c.n
		}
		costs = append(costs, c)
	}
	if err := rows.Err(); err != nil || events == 0 {
		return err
	}
	fmt.Printf("%-28s %6s %12s %14s %16s\n", "table", "parts", "rows/event", "bytes/event", "raw bytes/event")
	var disk float64
	for _, c := range costs {
		disk += float64(c.disk)
		fmt.Printf("%-28s %6d %12.2f %14.1f %16.1f\n", c.table, c.parts, float64(c.n)/float64(events),
			float64(c.disk)/float64(events), float64(c.plain)/float64(events))
	}
	fmt.Printf("%-28s %6s %12s %14.1f\n", "all", "", "", disk/float64(events))
	return nil
}

// insertCost times INSERT ... SELECT of the same rows (at most 1,000,000
// of the loaded events) into a copy of the events table alone and into a
// copy with the lookup tables' views, interleaved, 3 rounds each, through
// clickhouse-client --time, and prints the medians and their ratio: what
// the views add to the server's share of every insert the writer makes.
func insertCost(ctx context.Context, conn driver.Conn, o options, srv drillkit.Servers) error {
	db := o.database
	n := min(o.events, 1_000_000)
	setup := []string{
		fmt.Sprintf("CREATE TABLE %s.cost_plain AS %s.%s", db, db, migrations.Table),
		fmt.Sprintf("CREATE TABLE %s.cost_views AS %s.%s", db, db, migrations.Table),
	}
	for _, l := range migrations.Lookups {
		cols := "workspace_id, " + l.Column + ", timestamp, timestamp_ns, id"
		setup = append(setup,
			fmt.Sprintf("CREATE TABLE %s.cost_%s AS %s.%s", db, l.Table, db, l.Table),
			fmt.Sprintf("CREATE MATERIALIZED VIEW %s.cost_%s TO %s.cost_%s AS SELECT %s FROM %s.cost_views", db, l.View(), db, l.Table, cols, db))
	}
	for _, q := range setup {
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("insert cost: %w", err)
		}
	}
	cols := strings.Join(migrations.InsertColumns, ", ")
	times := map[string][]float64{}
	for range 3 {
		for _, table := range []string{"cost_plain", "cost_views"} {
			q := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s LIMIT %d", db, table, cols, cols, db, migrations.Table, n)
			ms, err := timeSQL(o, srv, []string{q}, 1, 0)
			if err != nil {
				return fmt.Errorf("insert cost: %w", err)
			}
			times[table] = append(times[table], ms...)
		}
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	plain, views := median(times["cost_plain"]), median(times["cost_views"])
	fmt.Printf("server time to insert %d events (INSERT ... SELECT, median of 3 interleaved): events table alone %.0f ms (%.0f events/s), with the 3 lookup views %.0f ms (%.0f events/s): x%.2f\n",
		n, plain, float64(n)/plain*1000, views, float64(n)/views*1000, views/plain)
	for _, t := range []string{"cost_plain", "cost_views"} {
		_ = conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s", db, t))
	}
	for _, l := range migrations.Lookups {
		_ = conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.cost_%s", db, l.View()))
		_ = conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.cost_%s", db, l.Table))
	}
	return nil
}
