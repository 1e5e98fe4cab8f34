package sealer

// Inserting the log's rows: one native block of whole columns.

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// insert stores rows in table t of database db in one INSERT of one
// native block, column by column (migrations.Block): the driver takes
// each column's slice at once instead of converting row by row, value by
// value (row by row, BenchmarkSealRound's round of 20,000 records made
// 513,105 allocations, 254,232 column by column). One block, as the
// row-by-row batch sent: streamed in blocks (chconn.InsertBlocks), an
// insert of more rows than the server squashes into one part
// (min_insert_block_size_rows, 1,048,576) would be written in pieces as
// it arrives, and a connection lost in between could leave a leaf's
// level-0 stored hash without its upper levels. Nothing is inserted for
// no rows.
func insert[R any](ctx context.Context, conn Conn, db string, t *migrations.TableDef[R], rows []R) error {
	return insertInto(ctx, conn, t.Insert(db), t, rows)
}

// insertInto is insert with the INSERT statement given (query), for
// another table with t's InsertColumns (the kept leaves).
func insertInto[R any](ctx context.Context, conn Conn, query string, t *migrations.TableDef[R], rows []R) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	if err := chconn.AppendColumns(batch, t.InsertColumns(), t.NewBlock().Columns(rows)...); err != nil {
		_ = batch.Abort()
		return err
	}
	return batch.Send()
}
