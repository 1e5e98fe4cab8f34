package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// exportBlockRows is the block size an export asks of ClickHouse: the
// driver holds a few blocks at a time, so this bounds the API's memory.
const exportBlockRows = 4096

// Export calls fn for every event matching f in the retention window,
// newest first (timestamp, then id, descending), each once, as ClickHouse
// sends them: nothing is collected, so memory does not grow with the size
// of the export. It reads the window in chunks of whole days, newest first,
// each holding about exportChunkRows rows at most (one day at least), so
// ClickHouse sorts one chunk at a time.
//
// The Row passed to fn is reused: fn must not keep it. An error from fn
// stops the export and is returned; cancelling ctx stops it with ctx's
// error.
func (s *Store) Export(ctx context.Context, f Filter, fn func(r *migrations.Row) error) error {
	return s.export(ctx, f, "\nLIMIT 1 BY timestamp_ns, id", fn)
}

// ExportCopies is Export without collapsing unmerged copies: every stored
// copy of an event is passed to fn (for verify, which checks each).
func (s *Store) ExportCopies(ctx context.Context, f Filter, fn func(r *migrations.Row) error) error {
	return s.export(ctx, f, "", fn)
}

// export reads the window in chunks; limitBy ends each chunk's query.
func (s *Store) export(ctx context.Context, f Filter, limitBy string, fn func(r *migrations.Row) error) error {
	sc, err := s.scope(ctx, f)
	if err != nil || sc.empty() {
		return err
	}
	events, _, err := s.source(ctx)
	if err != nil {
		return err
	}
	chunks, err := s.exportChunks(ctx, events, f.WorkspaceID, sc)
	if err != nil {
		return err
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_block_size": exportBlockRows}))
	for _, c := range chunks {
		bs := s.branches(f.WorkspaceID, events, sc, c, func(q *query) { q.filters(f) })
		if len(bs) == 0 {
			continue
		}
		from, args := union(bs, selectColumns, false, "")
		sql := fmt.Sprintf("SELECT * FROM %s\nORDER BY timestamp_ns DESC, id DESC%s", from, limitBy)
		if err := s.each(ctx, sql, args, fn); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return nil
}

// exportChunks splits sp into spans of whole UTC days (clipped to sp),
// newest first, each with exportChunkRows stored rows at most (or one day),
// from a count of the workspace's rows per day, which reads two narrow
// columns.
func (s *Store) exportChunks(ctx context.Context, events, workspaceID string, sc scope) ([]span, error) {
	sp := sc.kept // the widest: the filter's range
	bs := s.branches(workspaceID, events, sc, sp, func(*query) {})
	if len(bs) == 0 {
		return nil, nil
	}
	from, args := union(bs, "timestamp", false, "")
	sql := fmt.Sprintf("SELECT toStartOfDay(timestamp) AS day, count() FROM %s\nGROUP BY day ORDER BY day DESC", from)
	var chunks []span
	var rows uint64
	err := s.scanAll(ctx, sql, args, func(scan func(...any) error) error {
		var day time.Time
		var n uint64
		if err := scan(&day, &n); err != nil {
			return err
		}
		lo := max(day.UnixNano(), sp.lo)
		hi := min(day.Add(24*time.Hour).UnixNano(), sp.hi)
		last := len(chunks) - 1
		// Grow the current chunk (over empty days too) while it stays small.
		if last >= 0 && rows+n <= s.exportChunkRows {
			chunks[last].lo = lo
			rows += n
			return nil
		}
		chunks = append(chunks, span{lo: lo, hi: hi})
		rows = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan export: %w", err)
	}
	return chunks, nil
}
