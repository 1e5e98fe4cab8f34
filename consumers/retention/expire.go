package retention

// Deletes under per-workspace retention: rows that a workspace's policy
// expires before the deployment's window drops their partition (a shorter
// window, or the week partly past the window), and rows of the long-term
// tables past their workspace's window (or past the day a restored row
// was kept until), are deleted with ALTER TABLE ... DELETE mutations, which 18.16 and current servers both apply
// in the background by rewriting the parts holding such rows. A delete is
// issued only where a count finds rows to delete, never for a workspace
// under a legal hold, and not while an earlier delete on the table is
// still running.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// expiry is one workspace's delete condition on one kind of table (or,
// with ws "", that of a range of the workspaces without a policy).
type expiry struct {
	ws   string
	cond string // on the table's columns; ? are args
	args []any
	// names is how many workspace ids cond names (0 counts as 1).
	names int
}

// expireWorkspaces deletes what the policies expire before the partition
// drops would. It returns the tables it issued deletes on.
func (e *Enforcer) expireWorkspaces(ctx context.Context, r *run) ([]string, error) {
	// Read before the archive: a row stored after it is left for a later
	// run, which archives it first (see SetSettle).
	since, settling, err := e.settledBefore(ctx)
	if err != nil {
		return nil, err
	}
	failed, err := e.archiveExpiring(ctx, r.liveExpiries(nil), r.keptExpiries(nil))
	if err != nil {
		return nil, err
	}
	live, kept, leavesKept := r.liveExpiries(failed), r.keptExpiries(failed), r.keptLeafExpiries(failed)
	short := slices.DeleteFunc(slices.Clone(live), func(x expiry) bool { return x.ws == "" })
	var deleted []string
	tables := []struct {
		name string
		xs   []expiry
	}{{migrations.Table, live}, {migrations.IDsTable, short}, {migrations.LeavesTable, live},
		{migrations.KeptTable, kept}, {migrations.KeptLeavesTable, leavesKept}}
	for _, l := range migrations.Lookups {
		tables = append(tables, struct {
			name string
			xs   []expiry
		}{l.Table, live})
	}
	for _, t := range tables {
		did, err := e.deleteExpired(ctx, r, t.name, t.xs, settledBound(t.name, since, settling))
		if err != nil {
			return deleted, fmt.Errorf("%s: %w", t.name, err)
		}
		if did {
			deleted = append(deleted, t.name)
		}
	}
	return deleted, nil
}

// liveExpiries are the conditions of the expired rows of the events
// table's side (events, lookup tables, leaves), but those of the
// workspaces in exclude: a workspace with a window no longer than the
// deployment's (and no hold) past its window. For the deployment's window
// these are the rows of the one week partly past it, which the partition
// drops leave until the whole week has expired: deleting them keeps the
// promise that expired rows are gone within a day. Workspaces kept longer
// have none here (their rows are copied before their week is dropped).
// They hold on every table with workspace_id and timestamp_ns; the id
// registry takes the shorter windows' only (its day partitions follow
// the deployment's window).
func (r *run) liveExpiries(exclude map[string]bool) []expiry {
	var pol []wsBefore
	for _, ws := range sortedKeys(r.policies) {
		p := r.policies[ws]
		if p.Hold || p.Days > r.defaultDays || exclude[ws] {
			continue
		}
		pol = append(pol, wsBefore{ws, r.deleteBefore(p.Days)})
	}
	out := grouped(pol, " AND timestamp_ns < ?)", func(b int64) []any { return []any{b} })
	return append(out, r.others(exclude, " AND timestamp_ns < ?)", r.deleteBefore(r.defaultDays))...)
}

// keptExpiries are the conditions of the long-term table's rows past
// their time, but those of the workspaces in exclude: a row that follows
// its policy past its window (the deployment's for a workspace without a
// policy), a restored row from the day it was kept until. Held workspaces
// have none.
func (r *run) keptExpiries(exclude map[string]bool) []expiry {
	today := time.Date(r.now.Year(), r.now.Month(), r.now.Day(), 0, 0, 0, 0, time.UTC).Unix()
	const due = " AND ((kept_until = toDate(0) AND timestamp_ns < ?) OR (kept_until != toDate(0) AND kept_until <= toDate(?))))"
	var pol []wsBefore
	for _, ws := range sortedKeys(r.policies) {
		if p := r.policies[ws]; !p.Hold && !exclude[ws] {
			pol = append(pol, wsBefore{ws, r.deleteBefore(p.Days)})
		}
	}
	out := grouped(pol, due, func(b int64) []any { return []any{b, today} })
	return append(out, r.others(exclude, due, r.deleteBefore(r.defaultDays), today)...)
}

// keptLeafExpiries are the conditions of the long-term leaves past their
// workspace's window, but those of the workspaces in exclude (held
// workspaces: none).
func (r *run) keptLeafExpiries(exclude map[string]bool) []expiry {
	var pol []wsBefore
	for _, ws := range sortedKeys(r.policies) {
		if p := r.policies[ws]; !p.Hold && !exclude[ws] {
			pol = append(pol, wsBefore{ws, r.deleteBefore(p.Days)})
		}
	}
	out := grouped(pol, " AND timestamp_ns < ?)", func(b int64) []any { return []any{b} })
	return append(out, r.others(exclude, " AND timestamp_ns < ?)", r.deleteBefore(r.defaultDays))...)
}

// deleteBefore is the time (ns) before which a window of days deletes
// rows: the start (UTC) of the day of its cutoff. Rows between it and the
// cutoff are hidden by the readers and deleted the next day, so each
// table sees at most one delete a day per window, not one a run.
func (r *run) deleteBefore(days int) int64 {
	return r.now.Add(-time.Duration(days) * 24 * time.Hour).Truncate(24 * time.Hour).UnixNano()
}

// archiveExpiring archives the (workspace, day)s of the events table's
// rows that short expires and of the long-term table's rows that kept
// expires (not restored rows: they came from an archive). It returns the
// workspaces an archive failed for: nothing of them is deleted this run.
func (e *Enforcer) archiveExpiring(ctx context.Context, short, kept []expiry) (map[string]bool, error) {
	failed := map[string]bool{}
	if e.archiver == nil {
		return failed, nil
	}
	keptFollowing := make([]expiry, len(kept))
	for i, x := range kept {
		keptFollowing[i] = x
		keptFollowing[i].cond = "(kept_until = toDate(0) AND " + x.cond + ")"
	}
	for _, src := range []struct {
		table string
		xs    []expiry
	}{{migrations.Table, short}, {migrations.KeptTable, keptFollowing}} {
		for _, xs := range chunkExpiries(src.xs) {
			groups, err := e.expiringDays(ctx, src.table, xs)
			if err != nil {
				return nil, err
			}
			for _, g := range groups {
				if !failed[g.ws] && !e.archive(ctx, []dayGroup{g}) {
					failed[g.ws] = true
				}
			}
		}
	}
	return failed, nil
}

// expiringDays reads the (workspace, day)s of table's rows that xs select.
func (e *Enforcer) expiringDays(ctx context.Context, table string, xs []expiry) ([]dayGroup, error) {
	cond, args := joinExpiries(xs)
	rows, err := e.conn.Query(ctx, fmt.Sprintf("SELECT workspace_id, toUInt32(toDate(timestamp)) AS day FROM %s.%s WHERE %s GROUP BY workspace_id, day ORDER BY workspace_id, day",
		e.database, table, cond), args...)
	if err != nil {
		return nil, fmt.Errorf("read the days expiring in %s: %w", table, err)
	}
	defer rows.Close()
	var out []dayGroup
	for rows.Next() {
		var (
			g   dayGroup
			day uint32
		)
		if err := rows.Scan(&g.ws, &day); err != nil {
			return nil, fmt.Errorf("read the days expiring in %s: %w", table, err)
		}
		g.day = time.Unix(int64(day)*86400, 0).UTC()
		out = append(out, g)
	}
	return out, rows.Err()
}

// deleteExpired issues, on table's storage table, the deletes of the rows
// xs select (and bound, when not nil, selects too), a chunk of conditions
// at a time, where a count finds some. It issues none while a mutation of
// the table is unfinished: that one may be deleting them already, and the
// next run counts again.
func (e *Enforcer) deleteExpired(ctx context.Context, r *run, table string, xs []expiry, bound *expiry) (bool, error) {
	if len(xs) == 0 {
		return false, nil
	}
	if busy, err := e.mutating(ctx, table); err != nil || busy {
		return false, err
	}
	did := false
	for _, chunk := range chunkExpiries(xs) {
		cond, args := joinExpiries(chunk)
		if bound != nil {
			cond, args = "("+cond+") AND "+bound.cond, append(args, bound.args...)
		}
		var n uint64
		if err := e.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s", e.database, table, cond), args...).Scan(&n); err != nil {
			return did, fmt.Errorf("count expired rows: %w", err)
		}
		if n == 0 {
			continue
		}
		if err := e.unchanged(ctx, r); err != nil {
			return did, err
		}
		q := fmt.Sprintf("ALTER TABLE %s.%s%s DELETE WHERE %s", e.database, e.schema.StorageTable(table), e.schema.OnCluster(), cond)
		if err := e.conn.Exec(ctx, q, args...); err != nil {
			return did, fmt.Errorf("delete expired rows: %w", err)
		}
		e.log.Info("retention deletes expired rows", "table", table, "rows", n)
		did = true
		// A hold (or a longer window) that landed between the check and
		// the delete, whose own copy looked before the delete was queued:
		// stopping the run makes the next one (at once, see Run) copy the
		// workspace's rows out of this delete's way (protectChanged) while
		// it is still queued, instead of at the next interval.
		if err := e.unchanged(ctx, r); err != nil {
			return did, err
		}
	}
	return did, nil
}

// mutating reports whether table's storage table has an unfinished
// mutation (on a cluster, on any node).
func (e *Enforcer) mutating(ctx context.Context, table string) (bool, error) {
	src := "system.mutations"
	if e.schema.Cluster != "" {
		src = fmt.Sprintf("cluster('%s', system.mutations)", e.schema.Cluster)
	}
	var n uint64
	if err := e.conn.QueryRow(ctx, "SELECT count() FROM "+src+" WHERE database = ? AND table = ? AND is_done = 0",
		e.database, e.schema.StorageTable(table)).Scan(&n); err != nil {
		return false, fmt.Errorf("look up unfinished deletes: %w", err)
	}
	return n > 0, nil
}

func joinExpiries(xs []expiry) (string, []any) {
	conds := make([]string, len(xs))
	var args []any
	for i, x := range xs {
		conds[i] = x.cond
		args = append(args, x.args...)
	}
	return strings.Join(conds, " OR "), args
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// wsBefore is a workspace whose rows before an instant (ns) expire.
type wsBefore struct {
	ws     string
	before int64
}

// grouped returns one condition per group of at most othersChunk
// workspaces sharing a deleteBefore: "(workspace_id IN (...)" + tail,
// whose arguments are the ids and tailArgs of the instant. Workspaces
// with the same window share one IN list: ClickHouse (18.16 and current)
// slows down faster than an OR chain of one term per workspace grows
// (400 terms 0.98 s, 800 terms 5.66 s on 18.16), where a set lookup does
// not.
func grouped(pol []wsBefore, tail string, tailArgs func(int64) []any) []expiry {
	by := map[int64][]string{}
	var keys []int64
	for _, p := range pol {
		if _, ok := by[p.before]; !ok {
			keys = append(keys, p.before)
		}
		by[p.before] = append(by[p.before], p.ws)
	}
	slices.Sort(keys)
	var out []expiry
	for _, b := range keys {
		ids := by[b]
		for lo := 0; lo < len(ids); lo += othersChunk {
			g := ids[lo:min(lo+othersChunk, len(ids))]
			out = append(out, expiry{ws: g[0], cond: "(workspace_id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(g)), ", ") + ")" + tail,
				args: append(anys(g), tailArgs(b)...), names: len(g)})
		}
	}
	return out
}
