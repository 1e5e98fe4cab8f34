package chconn_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/stacktest"
)

// TestInsertBlocksStoresOnePartPerInsert streams an insert of several
// blocks into the real server: every row is stored once, and the server
// squashed the blocks into one part (level 0: not the result of a merge).
// A failing block aborts the insert and leaves the connection usable.
func TestInsertBlocksStoresOnePartPerInsert(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	table := ch.Database + ".blocks"
	require.NoError(t, conn.Exec(ctx, "CREATE TABLE "+table+" (n UInt64, s String) ENGINE = MergeTree() ORDER BY n"))
	query := "INSERT INTO " + table + " (n, s)"
	names := []string{"n", "s"}

	n := 3*chconn.BlockRows + 5
	var blocks [][2]int
	var ns []uint64
	var ss []string
	err := chconn.InsertBlocks(ctx, conn, query, n, func(b driver.Batch, lo, hi int) error {
		blocks = append(blocks, [2]int{lo, hi})
		ns, ss = ns[:0], ss[:0]
		for i := lo; i < hi; i++ {
			ns, ss = append(ns, uint64(i)), append(ss, fmt.Sprint("row ", i))
		}
		return chconn.AppendColumns(b, names, ns, ss)
	})
	require.NoError(t, err)
	b := chconn.BlockRows
	require.Equal(t, [][2]int{{0, b}, {b, 2 * b}, {2 * b, 3 * b}, {3 * b, n}}, blocks)

	var count, sum, distinct uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(), sum(n), uniqExact(s) FROM "+table).Scan(&count, &sum, &distinct))
	require.Equal(t, uint64(n), count)
	require.Equal(t, uint64(n)*uint64(n-1)/2, sum)
	require.Equal(t, uint64(n), distinct)
	var parts, rows uint64
	var level uint32
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(), sum(rows), max(level) FROM system.parts WHERE active AND database = ? AND table = 'blocks'",
		ch.Database).Scan(&parts, &rows, &level))
	require.Equal(t, []uint64{1, uint64(n)}, []uint64{parts, rows}, "one part for the whole insert")
	require.Zero(t, level, "the part was written by the insert, not merged from several")

	boom := errors.New("boom")
	err = chconn.InsertBlocks(ctx, conn, query, n, func(b driver.Batch, lo, hi int) error {
		if lo > 0 {
			return boom
		}
		return chconn.AppendColumns(b, names, []uint64{1}, []string{"x"}, []int{2})
	})
	require.ErrorContains(t, err, "3 column slices for 2 columns")
	err = chconn.InsertBlocks(ctx, conn, query, n, func(b driver.Batch, lo, hi int) error {
		if lo > 0 {
			return boom
		}
		return chconn.AppendColumns(b, names, make([]uint64, hi-lo), make([]string, hi-lo))
	})
	require.ErrorIs(t, err, boom)
	err = chconn.InsertBlocks(ctx, conn, query, 1, func(b driver.Batch, lo, hi int) error {
		return chconn.AppendColumns(b, names, []string{"not a number"}, []string{"x"})
	})
	require.ErrorContains(t, err, "append column n")
	// The connection pool still works. An aborted insert may have stored
	// the blocks it sent (18.16 writes what it received when the client
	// goes away), which is why callers retry into tables where a repeated
	// row is harmless; those rows have an empty s.
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+table+" WHERE s != ''").Scan(&count))
	require.Equal(t, uint64(n), count)
}
