package sealer

// Inserting the log's rows: in native blocks of whole columns.

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// insert stores rows in table t of database db in one INSERT, column by
// column (migrations.Block, chconn.InsertBlocks): the driver takes each
// column's slice at once instead of converting row by row, value by
// value (row by row, BenchmarkSealRound's round of 20,000 records made
// 513,105 allocations, 254,232 column by column). Nothing is inserted
// for no rows.
func insert[R any](ctx context.Context, conn Conn, db string, t *migrations.TableDef[R], rows []R) error {
	return insertInto(ctx, conn, t.Insert(db), t, rows)
}

// insertInto is insert with the INSERT statement given (query), for
// another table with t's InsertColumns (the kept leaves).
func insertInto[R any](ctx context.Context, conn Conn, query string, t *migrations.TableDef[R], rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	block := t.NewBlock()
	return chconn.InsertBlocks(ctx, conn, query, len(rows), func(b driver.Batch, lo, hi int) error {
		return chconn.AppendColumns(b, t.InsertColumns(), block.Columns(rows[lo:hi])...)
	})
}
