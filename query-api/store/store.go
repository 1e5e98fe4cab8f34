// Package store reads audit events from ClickHouse for the API. Every query
// is scoped to one workspace and to the retention window, whatever the
// caller asks, and every value reaches ClickHouse as a bound parameter.
// Copies of one event not yet merged by the ReplacingMergeTree are hidden
// with LIMIT 1 BY, so a replayed event is never returned twice.
package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Conn is what the store needs of a ClickHouse connection.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Store reads events. It is safe for concurrent use.
type Store struct {
	conn   Conn
	table  string
	window time.Duration
	now    func() time.Time
}

// New returns a store over database.audit_events that never returns events
// older than retentionDays.
func New(conn Conn, database string, retentionDays int, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{conn: conn, table: database + "." + migrations.Table,
		window: time.Duration(retentionDays) * 24 * time.Hour, now: now}
}

// Filter selects events of one workspace. Empty fields do not filter.
type Filter struct {
	WorkspaceID  string
	Events       []string
	Category     string
	ActorType    string
	ActorID      string
	ResourceType string
	ResourceID   string
	Since, Until time.Time // inclusive, exclusive; zero = open
}

// Cursor is a position in the newest-first order: the (timestamp, id) of
// the last event of a page.
type Cursor struct {
	TimestampNs int64  `json:"t"`
	ID          string `json:"i"`
}

// Encode returns the cursor as an opaque string.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadCursor is returned by DecodeCursor for strings Encode did not make.
var ErrBadCursor = errors.New("invalid cursor: pass next_cursor from a previous page unchanged")

// DecodeCursor parses a cursor made by Encode.
func DecodeCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(s) > 512 {
		return Cursor{}, ErrBadCursor
	}
	var c Cursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || c.TimestampNs <= 0 {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}

// Page is one page of events, newest first.
type Page struct {
	Events []event.Event
	// Next is set when more events may follow.
	Next *Cursor
}

const selectColumns = `workspace_id, timestamp_ns, id, event, category,
    actor_type, actor_id, actor_name, actor_email,
    resource_type, resource_id, resource_name, changes,
    context_ip, context_user_agent, context_request_id, properties, received_at_ns`

// where builds the WHERE clause and its arguments for f, always including
// the workspace and the retention window.
func (s *Store) where(f Filter) (string, []any) {
	cutoff := s.now().Add(-s.window)
	if f.Since.After(cutoff) {
		cutoff = f.Since
	}
	// timestamp (seconds) prunes day partitions; timestamp_ns is exact.
	conds := []string{"workspace_id = ?", "timestamp >= toDateTime(?)", "timestamp_ns >= ?"}
	args := []any{f.WorkspaceID, cutoff.Unix(), cutoff.UnixNano()}
	if !f.Until.IsZero() {
		conds = append(conds, "timestamp <= toDateTime(?)", "timestamp_ns < ?")
		args = append(args, f.Until.Unix(), f.Until.UnixNano())
	}
	if len(f.Events) > 0 {
		conds = append(conds, "event IN ("+placeholders(len(f.Events))+")")
		for _, e := range f.Events {
			args = append(args, e)
		}
	}
	for _, eq := range []struct{ col, v string }{
		{"category", f.Category}, {"actor_type", f.ActorType}, {"actor_id", f.ActorID},
		{"resource_type", f.ResourceType}, {"resource_id", f.ResourceID},
	} {
		if eq.v != "" {
			conds = append(conds, eq.col+" = ?")
			args = append(args, eq.v)
		}
	}
	return strings.Join(conds, " AND "), args
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// List returns up to limit events matching f, newest first (timestamp, then
// id, descending), after the cursor when one is given.
func (s *Store) List(ctx context.Context, f Filter, after *Cursor, limit int) (Page, error) {
	where, args := s.where(f)
	if after != nil {
		where += " AND (timestamp_ns < ? OR (timestamp_ns = ? AND id < ?))"
		args = append(args, after.TimestampNs, after.TimestampNs, after.ID)
	}
	q := fmt.Sprintf(`SELECT %s FROM %s WHERE %s
ORDER BY timestamp_ns DESC, id DESC
LIMIT 1 BY timestamp_ns, id
LIMIT %d`, selectColumns, s.table, where, limit+1)
	events, err := s.query(ctx, q, args...)
	if err != nil {
		return Page{}, err
	}
	var p Page
	if len(events) > limit {
		events = events[:limit]
		last := events[limit-1]
		p.Next = &Cursor{TimestampNs: last.Timestamp.UnixNano(), ID: last.ID}
	}
	p.Events = events
	return p, nil
}

// Get returns one event by id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, workspaceID, id string) (event.Event, error) {
	where, args := s.where(Filter{WorkspaceID: workspaceID})
	q := fmt.Sprintf(`SELECT %s FROM %s WHERE %s AND id = ?
ORDER BY timestamp_ns DESC LIMIT 1`, selectColumns, s.table, where)
	events, err := s.query(ctx, q, append(args, id)...)
	if err != nil {
		return event.Event{}, err
	}
	if len(events) == 0 {
		return event.Event{}, ErrNotFound
	}
	return events[0], nil
}

// ErrNotFound means no such event in the window.
var ErrNotFound = errors.New("event not found")

func (s *Store) query(ctx context.Context, q string, args ...any) ([]event.Event, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// scan reads one row in selectColumns order.
func scan(rows driver.Rows) (event.Event, error) {
	var (
		e              event.Event
		tsNs, recvNs   int64
		changes, props string
	)
	if err := rows.Scan(&e.WorkspaceID, &tsNs, &e.ID, &e.Event, &e.Category,
		&e.Actor.Type, &e.Actor.ID, &e.Actor.Name, &e.Actor.Email,
		&e.Resource.Type, &e.Resource.ID, &e.Resource.Name, &changes,
		&e.Context.IP, &e.Context.UserAgent, &e.Context.RequestID, &props, &recvNs); err != nil {
		return e, fmt.Errorf("scan event: %w", err)
	}
	e.Timestamp = time.Unix(0, tsNs).UTC()
	e.ReceivedAt = time.Unix(0, recvNs).UTC()
	if changes != "" && changes != "{}" {
		if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
			return e, fmt.Errorf("decode changes of %s: %w", e.ID, err)
		}
	}
	if props != "" && props != "{}" {
		e.Properties = json.RawMessage(props)
	}
	return e, nil
}
