package chdbtest

// The batches of PrepareBatch: rows or columns appended, sent as one INSERT.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

type batch struct {
	s     *Server
	ctx   context.Context
	query string
	rows  [][]any
	// cols are the values appended column by column (Column), turned
	// into rows by Flush.
	cols [][]any
	sent bool
}

func (b *batch) Append(v ...any) error {
	if b.sent {
		return errors.New("chdbtest: batch already sent")
	}
	b.rows = append(b.rows, append([]any(nil), v...))
	return nil
}

func (b *batch) Flush() error {
	if err := b.columnsToRows(); err != nil {
		return err
	}
	if len(b.rows) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(b.query)
	q.WriteString(" VALUES")
	for i, r := range b.rows {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(" (")
		for j, v := range r {
			lit, err := Literal(b.s.TZ, v)
			if err != nil {
				return fmt.Errorf("batch row %d value %d: %w", i+1, j+1, err)
			}
			if j > 0 {
				q.WriteString(", ")
			}
			q.WriteString(lit)
		}
		q.WriteByte(')')
	}
	b.rows = nil
	return b.s.Exec(b.ctx, q.String())
}

func (b *batch) Send() error {
	if b.sent {
		return errors.New("chdbtest: batch already sent")
	}
	b.sent = true
	return b.Flush()
}

func (b *batch) Abort() error {
	b.sent, b.rows, b.cols = true, nil, nil
	return nil
}

func (b *batch) Close() error { return b.Abort() }

func (b *batch) AppendStruct(any) error {
	return errors.New("chdbtest: AppendStruct is not supported")
}

func (b *batch) Column(i int) driver.BatchColumn { return &batchColumn{b: b, i: i} }
func (b *batch) Columns() []column.Interface     { return nil }
func (b *batch) IsSent() bool                    { return b.sent }
func (b *batch) Rows() int                       { return len(b.rows) }

// columnsToRows moves the values appended column by column into rows:
// every column must have as many values, and rows are not also appended
// row by row.
func (b *batch) columnsToRows() error {
	if len(b.cols) == 0 {
		return nil
	}
	if len(b.rows) > 0 {
		return errors.New("chdbtest: a batch appended both by row and by column")
	}
	n := len(b.cols[0])
	for i, c := range b.cols {
		if len(c) != n {
			return fmt.Errorf("chdbtest: column %d has %d values, column 0 has %d", i, len(c), n)
		}
	}
	for r := range n {
		row := make([]any, len(b.cols))
		for i, c := range b.cols {
			row[i] = c[r]
		}
		b.rows = append(b.rows, row)
	}
	b.cols = nil
	return nil
}

// batchColumn appends to one column of a batch.
type batchColumn struct {
	b *batch
	i int
}

// Append appends a slice's values ([]string, []uint64...).
func (c *batchColumn) Append(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return fmt.Errorf("chdbtest: column %d: Append takes a slice, got %T", c.i, v)
	}
	for j := range rv.Len() {
		if err := c.AppendRow(rv.Index(j).Interface()); err != nil {
			return err
		}
	}
	return nil
}

func (c *batchColumn) AppendRow(v any) error {
	if c.b.sent {
		return errors.New("chdbtest: batch already sent")
	}
	for len(c.b.cols) <= c.i {
		c.b.cols = append(c.b.cols, nil)
	}
	c.b.cols[c.i] = append(c.b.cols[c.i], v)
	return nil
}
