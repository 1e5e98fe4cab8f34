package migrations

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// distinct returns a row of type R whose fields all hold different values,
// told apart by seed.
func distinct[R any](seed int) R {
	var r R
	v := reflect.ValueOf(&r).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		n := seed*100 + i + 1
		switch f.Kind() {
		case reflect.String:
			f.SetString(fmt.Sprintf("%s-%d", v.Type().Field(i).Name, n))
		case reflect.Int32, reflect.Int64:
			f.SetInt(int64(n))
		case reflect.Uint32:
			f.SetUint(uint64(n))
		case reflect.Struct: // time.Time
			f.Set(reflect.ValueOf(time.Unix(int64(n), 0).UTC()))
		}
	}
	return r
}

// TestEveryFieldIsOneColumn checks each table's declaration against its
// row type: every field of the row is written to exactly one column, in
// InsertColumns order.
func TestEveryFieldIsOneColumn(t *testing.T) {
	check := func(t *testing.T, fields []any, values []any, inserted []string) {
		t.Helper()
		require.Len(t, values, len(inserted))
		require.Len(t, values, len(fields), "one column per field")
		for _, f := range fields {
			n := 0
			for _, v := range values {
				if fmt.Sprint(v) == fmt.Sprint(f) { // partition: a UInt32 of an int32
					n++
				}
			}
			require.Equal(t, 1, n, "field value %v is written once", f)
		}
	}
	fieldsOf := func(r any) []any {
		v := reflect.ValueOf(r)
		out := make([]any, v.NumField())
		for i := range out {
			out[i] = v.Field(i).Interface()
		}
		return out
	}
	t.Run(Table, func(t *testing.T) {
		r := distinct[Row](1)
		check(t, fieldsOf(r), Events.Values(&r), Events.InsertColumns())
		require.Equal(t, InsertColumns, Events.InsertColumns())
		require.Equal(t, Events.Values(&r), r.Values())
	})
	t.Run(IDsTable, func(t *testing.T) {
		r := distinct[StoredID](1)
		check(t, fieldsOf(r), EventIDs.Values(&r), EventIDs.InsertColumns())
	})
	t.Run(PartitionCountsTable, func(t *testing.T) {
		r := distinct[PartitionCount](1)
		check(t, fieldsOf(r), PartitionCounts.Values(&r), PartitionCounts.InsertColumns())
	})
	m := Migration{Version: 7, Name: "seven"}
	require.Equal(t, []any{uint32(7), "seven"}, schemaMigrations.Values(&m))
}

// TestBlockColumns checks that a block holds, column by column, the
// values Values returns row by row, and that a reused block holds only the
// last rows.
func TestBlockColumns(t *testing.T) {
	rows := []StoredID{distinct[StoredID](1), distinct[StoredID](2), distinct[StoredID](3)}
	b := EventIDs.NewBlock()
	for _, n := range []int{3, 1} {
		cols := b.Columns(rows[:n])
		require.Len(t, cols, len(EventIDs.InsertColumns()))
		for j, col := range cols {
			c := reflect.ValueOf(col)
			require.Equal(t, reflect.Slice, c.Kind())
			require.Equal(t, n, c.Len(), EventIDs.InsertColumns()[j])
			for i := range n {
				require.Equal(t, EventIDs.Values(&rows[i])[j], c.Index(i).Interface())
			}
		}
	}
	require.IsType(t, []uint32(nil), b.Columns(rows)[1], "partition is UInt32")
}

func TestPointers(t *testing.T) {
	var r Row
	dest := Events.Pointers(&r, []string{"id", "timestamp_ns", "sender_producer"})
	*dest[0].(*string), *dest[1].(*int64), *dest[2].(*string) = "a", 5, "p"
	require.Equal(t, Row{ID: "a", TimestampNs: 5, SenderProducer: "p"}, r)
	require.Panics(t, func() { Events.Pointers(&r, []string{"inserted_at"}) }, "left to its default")
	require.Panics(t, func() { Events.Pointers(&r, []string{"nope"}) })
	var s StoredID
	require.Panics(t, func() { EventIDs.Pointers(&s, []string{"partition"}) }, "UInt32 is not the field's int32")
}

func TestDeclarationMistakesPanic(t *testing.T) {
	require.Panics(t, func() { newTable[Row]("t", defaulted[Row]("a", "String", ""), defaulted[Row]("a", "String", "")) }, "a column twice")
	outside := new(string)
	require.Panics(t, func() { column("a", "String", func(*Row) *string { return outside }) }, "not a field of the row")
}

// BenchmarkEventsBlock measures turning 20,000 rows into the column slices
// of an insert block (the writer's work per block before the driver's).
func BenchmarkEventsBlock(b *testing.B) {
	rows := make([]Row, 20000)
	for i := range rows {
		rows[i] = distinct[Row](i)
	}
	block := Events.NewBlock()
	b.ReportAllocs()
	for b.Loop() {
		block.Columns(rows)
	}
}
