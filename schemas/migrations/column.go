package migrations

// Table declarations: one TableDef per table, from which its CREATE
// column list, its INSERT and the column blocks writers send derive.

import (
	"fmt"
	"strings"
	"unsafe"
)

// TableDef declares one table: its name and its columns in the order of
// its CREATE statement, each with the field of the row type R that holds
// it. It is read-only after the package is initialised and safe for
// concurrent use.
type TableDef[R any] struct {
	Name     string
	columns  []columnDef[R]
	inserted []string // the names of the columns with a field, in order
}

// columnDef declares one column of a table whose rows are R.
type columnDef[R any] struct {
	Name string
	// Type is the ClickHouse type, e.g. "String" or "DateTime('UTC')".
	Type string
	// Default is the DEFAULT expression, "" for none.
	Default string
	// of reads the column's value from a row; nil for a column writers
	// leave to its default.
	of field[R]
}

// field reads one column's value from rows of type R.
type field[R any] interface {
	// builder returns an empty column of a block.
	builder() builder[R]
	// value returns a row's value.
	value(r *R) any
	// pointer returns where a row holds the value, for Scan; nil when the
	// row holds it in another type than the column's.
	pointer(r *R) any
}

// builder collects one column's values of a block.
type builder[R any] interface {
	// reset empties the column.
	reset()
	// add appends rows' values.
	add(rows []R)
	// values returns the column's values as a slice of its Go type
	// ([]string, []int64, ...).
	values() any
}

// newTable declares a table; the columns' names must be unique.
func newTable[R any](name string, columns ...columnDef[R]) *TableDef[R] {
	t := &TableDef[R]{Name: name, columns: columns}
	seen := map[string]bool{}
	for _, c := range columns {
		if seen[c.Name] {
			panic(fmt.Sprintf("migrations: table %s declares column %s twice", name, c.Name))
		}
		seen[c.Name] = true
		if c.of != nil {
			t.inserted = append(t.inserted, c.Name)
		}
	}
	return t
}

// column declares a column held in the row's field of the column's Go
// type V (string for String, int64 for Int64, time.Time for DateTime...)
// that f returns. Blocks read the field at its offset in the row, which
// column takes from f once; it panics when f returns anything but a field
// of the row.
func column[R, V any](name, typ string, f func(r *R) *V) columnDef[R] {
	var r R
	off := uintptr(unsafe.Pointer(f(&r))) - uintptr(unsafe.Pointer(&r))
	if off+unsafe.Sizeof(*new(V)) > unsafe.Sizeof(r) {
		panic(fmt.Sprintf("migrations: column %s: the function must return a field of the row", name))
	}
	return columnDef[R]{Name: name, Type: typ, of: inField[R, V]{ptr: f, off: off}}
}

// converted declares a column whose value is computed from the row, such
// as a UInt32 from an int32 field; it is written but cannot be scanned into
// the row.
func converted[R, V any](name, typ string, f func(r *R) V) columnDef[R] {
	return columnDef[R]{Name: name, Type: typ, of: computed[R, V](f)}
}

// defaulted is a column writers leave to its default.
func defaulted[R any](name, typ, def string) columnDef[R] {
	return columnDef[R]{Name: name, Type: typ, Default: def}
}

// withDefault returns c with a DEFAULT expression, for rows stored before
// the column existed.
func (c columnDef[R]) withDefault(def string) columnDef[R] {
	c.Default = def
	return c
}

// definition is the column as the CREATE statement declares it: name,
// type and DEFAULT expression, if any.
func (c columnDef[R]) definition() string {
	if c.Default == "" {
		return c.Name + " " + c.Type
	}
	return c.Name + " " + c.Type + " DEFAULT " + c.Default
}

// Columns are the names of every column, in the order of the CREATE
// statement (those left to their default included).
func (t *TableDef[R]) Columns() []string {
	out := make([]string, len(t.columns))
	for i, c := range t.columns {
		out[i] = c.Name
	}
	return out
}

// InsertColumns are the columns a writer names in its INSERT, in the
// order of the values it appends: every column but those left to their
// default (18.16 needs them named for batch inserts).
func (t *TableDef[R]) InsertColumns() []string { return t.inserted }

// InsertTypes are the ClickHouse types of InsertColumns, in that order.
func (t *TableDef[R]) InsertTypes() []string {
	var out []string
	for _, c := range t.columns {
		if c.of != nil {
			out = append(out, c.Type)
		}
	}
	return out
}

// Insert is the INSERT statement of database's table for a native batch
// of InsertColumns.
func (t *TableDef[R]) Insert(database string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (%s)", database, t.Name, strings.Join(t.inserted, ", "))
}

// Values returns a row's values in InsertColumns order, for one
// batch.Append per row (tests and tools; writers use a Block).
func (t *TableDef[R]) Values(r *R) []any {
	out := make([]any, 0, len(t.inserted))
	for _, c := range t.columns {
		if c.of != nil {
			out = append(out, c.of.value(r))
		}
	}
	return out
}

// Pointers returns where r holds the named columns, in that order, for
// rows.Scan. It panics on a column the table lacks or r cannot hold.
func (t *TableDef[R]) Pointers(r *R, names []string) []any {
	return t.Scanner(names)(r)
}

// Scanner looks the named columns up once and returns what gives, for a
// row, where it holds them, in that order, for rows.Scan: for reading many
// rows. The slice it returns is reused by the next call. It panics on a
// column the table lacks or rows cannot hold.
func (t *TableDef[R]) Scanner(names []string) func(r *R) []any {
	fields := make([]field[R], len(names))
	var zero R
	for i, name := range names {
		c := t.lookup(name)
		if c.of == nil || c.of.pointer(&zero) == nil {
			panic(fmt.Sprintf("migrations: %s.%s cannot be scanned into the row", t.Name, name))
		}
		fields[i] = c.of
	}
	out := make([]any, len(names))
	return func(r *R) []any {
		for i, f := range fields {
			out[i] = f.pointer(r)
		}
		return out
	}
}

// lookup returns the named column; it panics when the table lacks it.
func (t *TableDef[R]) lookup(name string) columnDef[R] {
	for _, c := range t.columns {
		if c.Name == name {
			return c
		}
	}
	panic(fmt.Sprintf("migrations: table %s has no column %s", t.Name, name))
}

// added returns the named columns as a migration that adds them to t.
func (t *TableDef[R]) added(names ...string) []AddedColumn {
	out := make([]AddedColumn, len(names))
	for i, name := range names {
		out[i] = AddedColumn{Table: t.Name, Column: t.lookup(name).definition()}
	}
	return out
}

// definition is the parenthesised column list of t's CREATE statement.
func (t *TableDef[R]) definition() string {
	var b strings.Builder
	b.WriteString("(\n")
	for i, c := range t.columns {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString("    ")
		b.WriteString(c.definition())
	}
	b.WriteString("\n)")
	return b.String()
}

// Block turns rows into the column slices of one insert block, in
// InsertColumns order, so that the driver takes each column at once
// instead of converting row by row, value by value. Its slices are reused
// from block to block; it is not safe for concurrent use.
type Block[R any] struct {
	builders []builder[R]
	cols     []any
}

// NewBlock returns an empty block of t's InsertColumns.
func (t *TableDef[R]) NewBlock() *Block[R] {
	b := &Block[R]{cols: make([]any, 0, len(t.inserted))}
	for _, c := range t.columns {
		if c.of != nil {
			b.builders = append(b.builders, c.of.builder())
		}
	}
	return b
}

// Columns returns rows' values, one slice per InsertColumns entry ([]string,
// []int64, []time.Time...), for batch.Column(i).Append. They are valid
// until the next call.
func (b *Block[R]) Columns(rows []R) []any {
	for _, c := range b.builders {
		c.reset()
	}
	// Column by column, a tile of rows at a time: the rows of a tile stay
	// in the CPU's cache while each column reads them (whole blocks do not:
	// filling column by column over all rows was 3 times slower).
	for lo := 0; lo < len(rows); lo += tileRows {
		tile := rows[lo:min(lo+tileRows, len(rows))]
		for _, c := range b.builders {
			c.add(tile)
		}
	}
	b.cols = b.cols[:0]
	for _, c := range b.builders {
		b.cols = append(b.cols, c.values())
	}
	return b.cols
}

// tileRows is how many rows Block.Columns reads column by column at once:
// about 100 KiB of events rows.
const tileRows = 256

// inField is a column held in a row's field of the column's Go type, at
// offset off in the row (ptr(r) is r's field).
type inField[R, V any] struct {
	ptr func(r *R) *V
	off uintptr
}

func (f inField[R, V]) value(r *R) any   { return *f.ptr(r) }
func (f inField[R, V]) pointer(r *R) any { return f.ptr(r) }
func (f inField[R, V]) builder() builder[R] {
	return &fieldValues[R, V]{off: f.off}
}

// computed is a column whose value a function computes from the row.
type computed[R, V any] func(r *R) V

func (f computed[R, V]) value(r *R) any { return f(r) }
func (computed[R, V]) pointer(*R) any   { return nil }
func (f computed[R, V]) builder() builder[R] {
	return &computedValues[R, V]{of: f}
}

// slice holds a block's values of one column.
type slice[V any] []V

func (s *slice[V]) reset()      { *s = (*s)[:0] }
func (s *slice[V]) values() any { return []V(*s) } // the driver takes []V, not slice[V]

// fieldValues fills a block's column from the rows' field at offset off:
// a load the compiler inlines, where calling a func(*R) *V per value made
// building the events' blocks 40% slower than the hand-written code it
// replaces.
type fieldValues[R, V any] struct {
	slice[V]
	off uintptr
}

func (c *fieldValues[R, V]) add(rows []R) {
	s := c.slice
	for i := range rows {
		s = append(s, *(*V)(unsafe.Add(unsafe.Pointer(&rows[i]), c.off)))
	}
	c.slice = s
}

// computedValues fills a block's column by calling the function per row.
type computedValues[R, V any] struct {
	slice[V]
	of computed[R, V]
}

func (c *computedValues[R, V]) add(rows []R) {
	s := c.slice
	for i := range rows {
		s = append(s, c.of(&rows[i]))
	}
	c.slice = s
}
