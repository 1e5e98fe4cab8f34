package chconn

// Reading a single row.

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Querier runs a query: a driver.Conn, or the narrower connection
// interfaces the packages declare.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// QueryOne runs a query that returns one row and scans it into dest; a
// query that returns no row is an error naming it.
func QueryOne(ctx context.Context, q Querier, dest []any, sql string, args ...any) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return fmt.Errorf("no row from %q", sql)
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}
