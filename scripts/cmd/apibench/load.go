package main

// The generated events: loaded with INSERT ... SELECT FROM system.numbers
// through clickhouse-client, one statement per day of the window.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/migrations/migrationstest"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// eventNames are the generated names (categories and resource types come
// from the catalogue); the last is rare.
var eventNames = []string{
	"Source Created", "Source Modified", "Source Deleted", "Warehouses Disabled", "Warehouses Enabled",
	"Warehouses Modified", "Destination Created", "Destination Modified", "Audience Created",
	"Audience Modified", "Tracking Plan Modified", "Workspace Modified", "Destination Deleted",
}

// load fills the database with o.events events unless it holds exactly
// that many already (in the old layout, before migration 5, with
// o.layouts). The generated rows go into audit_events either way.
func load(ctx context.Context, conn driver.Conn, srv drillkit.Servers, o options) error {
	table := o.database + "." + migrations.Table
	schema := migrations.Options{Database: o.database, RetentionDays: 90}
	create := func() error {
		if o.layouts {
			return migrationstest.BeforeLayout(ctx, conn, schema)
		}
		_, err := migrations.Apply(ctx, conn, schema)
		return err
	}
	var have uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&have)
	if err == nil && have == uint64(o.events) && !o.layouts {
		if _, err := migrations.Apply(ctx, conn, schema); err != nil {
			return err
		}
		if _, err := migrations.MoveLegacy(ctx, conn, schema, "19700101"); err != nil {
			return err
		}
		fmt.Printf("reusing %d events in %s\n", have, table)
		return nil
	}
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+o.database); err != nil {
		return err
	}
	if err := create(); err != nil {
		return err
	}
	start := time.Now()
	if err := generate(o, srv, table); err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("loaded %d events into %s in %.1f s (%.0f rows/s)\n", o.events, table, secs, float64(o.events)/secs)
	return nil
}

// generate inserts o.events events into table, a day of the window per
// statement.
func generate(o options, srv drillkit.Servers, table string) error {
	var names, cats, types []string
	for i, name := range eventNames {
		e, ok := catalogue.Lookup(name)
		if !ok {
			return fmt.Errorf("%q is not in the catalogue", name)
		}
		n := 1
		if i < len(eventNames)-1 {
			n = 80 // the last name is 80 times rarer than the others
		}
		for range n {
			names, cats, types = append(names, quote(e.Name)), append(cats, quote(e.Category)), append(types, quote(e.ResourceType))
		}
	}
	arr := func(v []string) string { return "[" + strings.Join(v, ",") + "]" }
	now := time.Now().Add(-time.Minute).UnixNano()
	const day = int64(24 * time.Hour)
	perDay := o.events / 90
	for d := range 90 {
		n := perDay
		if d == 89 {
			n = o.events - 89*perDay
		}
		// Within a day: uniform times; workspace floor(W * u^3) with u
		// uniform, so ws_0 gets ~10% and the median workspace ~0.05%.
		q := fmt.Sprintf(`INSERT INTO %[1]s (%[2]s)
SELECT concat('ws_', toString(w)), toDateTime(intDiv(ts, 1000000000)), ts, concat('evt_', lower(hex(sipHash64(n)))),
    arrayElement(%[3]s, k), arrayElement(%[4]s, k),
    arrayElement(['user','user','user','user','user','user','user','access_token','access_token','system'], n %% 10 + 1),
    concat('usr_', toString(a)), concat('User ', toString(a)), concat('user', toString(a), '@example.com'),
    arrayElement(%[5]s, k), concat('res_', toString(n %% 5000)),
    arrayElement(['Snowflake prod', 'BigQuery analytics', 'Web site', 'iOS app', 'Redshift staging'], n %% 5 + 1),
    '{"enabled":{"new":false,"old":true},"name":{"new":"after","old":"before"}}',
    IPv4NumToString(rand(3)), 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    concat('req_', toString(n)), '{"plan":"business","source":"bench"}',
    toDateTime(intDiv(ts, 1000000000)), ts, concat('legacy-', lower(hex(sipHash64(n %% 3)))), 'loadgen'
FROM (
    SELECT number + %[6]d AS n,
        toUInt32(floor(pow(rand(1) / 4294967296.0, 3) * %[7]d)) AS w,
        %[8]d - toInt64(rand64(2) %% %[9]d) AS ts,
        rand(4) %% %[10]d + 1 AS k,
        rand(5) %% 200 AS a
    FROM system.numbers LIMIT %[11]d
)`, table, strings.Join(migrations.InsertColumns, ", "), arr(names), arr(cats), arr(types),
			d*perDay, o.workspaces, now-int64(d)*day, day, len(names), n)
		if out, err := clientCmd(o, srv, "--query", q).CombinedOutput(); err != nil {
			return fmt.Errorf("load day %d: %v: %s", d, err, out)
		}
	}
	return nil
}

func clientCmd(o options, srv drillkit.Servers, args ...string) *exec.Cmd {
	return exec.Command(o.client, append(srv.ClientArgs(), args...)...)
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
