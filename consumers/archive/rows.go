package archive

// The rows of a workspace's day, read from ClickHouse whatever the
// retention window: the events table and, where it exists, the long-term
// table (without the rows restored from an archive, which are archived
// already).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Conn is what the archiver needs of a ClickHouse connection.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// readColumns are the stored columns a line carries (the second-precision
// times derive from the nanosecond ones).
var readColumns = slices.DeleteFunc(slices.Clone(migrations.Events.InsertColumns()), func(c string) bool {
	return c == "timestamp" || c == "received_at"
})

// ClickHouseRows reads a day's rows from database. Safe for concurrent use.
type ClickHouseRows struct {
	conn     Conn
	database string
}

// NewClickHouseRows returns the rows reader of database.
func NewClickHouseRows(conn Conn, database string) *ClickHouseRows {
	return &ClickHouseRows{conn: conn, database: database}
}

// Day calls fn for each event of the workspace with a timestamp in the
// UTC day [day, day+24h), each once (unmerged copies and a row in both
// tables collapse), not those restored from an archive. fn must not keep
// the row.
func (c *ClickHouseRows) Day(ctx context.Context, workspace string, day time.Time, fn func(r *migrations.Row) error) error {
	var kept uint64
	if err := c.one(ctx, &kept, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", c.database, migrations.KeptTable); err != nil {
		return fmt.Errorf("look up %s: %w", migrations.KeptTable, err)
	}
	lo := day.UTC().Truncate(24 * time.Hour)
	hi := lo.Add(24 * time.Hour)
	seen := map[key]bool{}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_block_size": 4096}))
	for i, t := range []string{migrations.Table, migrations.KeptTable} {
		if i == 1 && kept == 0 {
			break
		}
		cond := ""
		if t == migrations.KeptTable {
			cond = " AND restored = 0"
		}
		sql := fmt.Sprintf("SELECT %s FROM %s.%s\nWHERE workspace_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s\nLIMIT 1 BY timestamp_ns, id",
			strings.Join(readColumns, ", "), c.database, t, cond)
		if err := c.each(ctx, sql, []any{workspace, max(lo.Unix(), 0), max(hi.Unix(), 0)}, seen, fn); err != nil {
			return fmt.Errorf("read %s of %s on %s: %w", t, workspace, lo.Format(time.DateOnly), err)
		}
	}
	return nil
}

func (c *ClickHouseRows) each(ctx context.Context, sql string, args []any, seen map[key]bool, fn func(r *migrations.Row) error) error {
	rows, err := c.conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var r migrations.Row
	dest := migrations.Events.Pointers(&r, readColumns)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		k := key{r.TimestampNs, r.ID}
		if seen[k] {
			continue
		}
		seen[k] = true
		r.Timestamp = time.Unix(0, r.TimestampNs).UTC()
		r.ReceivedAt = time.Unix(0, r.ReceivedAtNs).UTC()
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (c *ClickHouseRows) one(ctx context.Context, dest any, sql string, args ...any) error {
	return chconn.QueryOne(ctx, c.conn, []any{dest}, sql, args...)
}
