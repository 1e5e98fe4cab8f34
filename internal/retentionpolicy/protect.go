package retentionpolicy

// Deletes queued before a legal hold or a longer window. The retention job deletes with
// ALTER TABLE ... DELETE mutations, which run in the background: one
// issued before a hold was placed would still delete the held
// workspace's rows it names. ClickHouse 18.16 has no KILL MUTATION (it
// answers "Syntax error ... Expected QUERY"), but on every version a
// mutation changes only the parts stored before it was issued: rows
// inserted after it are not touched. So Protect copies the held
// workspace's rows that a queued delete may name into the same table
// again; the copies outlive the delete, and readers and merges collapse
// them with the originals as they do a replayed insert.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Execer is what Protect needs of a ClickHouse connection.
type Execer interface {
	Querier
	Exec(ctx context.Context, query string, args ...any) error
}

// Protect copies again, into the same table, every row of workspace that
// a retention delete still unfinished could delete: in the events table
// (whose lookup tables its views fill again), the leaves and the
// long-term tables, the rows older than the day after the cutoff of the
// shortest window the workspace had since the oldest unfinished mutation
// was issued (from the history of its policies, an hour earlier for the
// clocks' skew; defaultDays without a policy), and the restored rows kept
// until tomorrow or earlier. It copies only into tables with an
// unfinished mutation, and returns them. A row a mutation already removed
// is not brought back: call it right after a hold is placed or a window
// lengthened (the retention job calls it again at each run while such
// mutations are unfinished). Copies collapse with the originals as
// replays do.
func Protect(ctx context.Context, conn Execer, o migrations.Options, workspace string, defaultDays int, now time.Time) ([]string, error) {
	pending, err := mutating(ctx, conn, o)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	oldest := now
	for _, t := range pending {
		if t.Before(oldest) {
			oldest = t
		}
	}
	days, current, err := shortestSince(ctx, conn, o.Database, workspace, defaultDays, oldest.Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	if !current.Hold && days >= current.Days {
		return nil, nil // the deletes delete nothing the window in force keeps
	}
	day := 24 * time.Hour
	before := now.UTC().Add(-time.Duration(days) * day).Truncate(day).Add(day).UnixNano()
	tomorrow := now.UTC().Truncate(day).Add(day).Unix()
	lookups := slices.ContainsFunc(migrations.Lookups, func(l migrations.Lookup) bool { _, ok := pending[o.StorageTable(l.Table)]; return ok })
	var copied []string
	for _, t := range []struct {
		name, cols, cond string
		args             []any
		also             bool
	}{
		{migrations.Table, strings.Join(migrations.Events.Columns(), ", "), "timestamp_ns < ?", []any{before}, lookups},
		{migrations.LeavesTable, strings.Join(migrations.Leaves.Columns(), ", "), "timestamp_ns < ?", []any{before}, false},
		{migrations.KeptTable, strings.Join(slices.Concat(migrations.Events.Columns(), migrations.KeptColumns), ", "),
			"(timestamp_ns < ? OR (kept_until != toDate(0) AND kept_until <= toDate(?)))", []any{before, tomorrow}, false},
		{migrations.KeptLeavesTable, strings.Join(migrations.Leaves.Columns(), ", "), "timestamp_ns < ?", []any{before}, false},
	} {
		if _, ok := pending[o.StorageTable(t.name)]; !ok && !t.also {
			continue
		}
		q := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s WHERE workspace_id = ? AND %s",
			o.Database, t.name, t.cols, t.cols, o.Database, t.name, t.cond)
		if err := conn.Exec(ctx, q, append([]any{workspace}, t.args...)...); err != nil {
			return copied, fmt.Errorf("protect %s's rows in %s from queued deletes: %w", workspace, t.name, err)
		}
		copied = append(copied, t.name)
	}
	return copied, nil
}

// shortestSince returns the fewest days workspace's policy had at any
// time since since (the policy in force then, defaultDays without one,
// and every change after) and the policy in force now (Days and Hold).
func shortestSince(ctx context.Context, conn Querier, database, workspace string, defaultDays int, since time.Time) (int, Policy, error) {
	current := Default(workspace, defaultDays)
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT days, hold, changed_at FROM %s.%s WHERE workspace_id = ? ORDER BY version", database, migrations.RetentionTable), workspace)
	if err != nil {
		return 0, current, fmt.Errorf("read the retention history of %s: %w", workspace, err)
	}
	defer rows.Close()
	inForce, shortest := defaultDays, MaxDays
	for rows.Next() {
		var (
			days uint16
			hold uint8
			at   time.Time
		)
		if err := rows.Scan(&days, &hold, &at); err != nil {
			return 0, current, fmt.Errorf("read the retention history of %s: %w", workspace, err)
		}
		if at.After(since) {
			shortest = min(shortest, int(days))
		} else {
			inForce = int(days)
		}
		current.Days, current.Hold = int(days), hold != 0
	}
	return min(shortest, inForce), current, rows.Err()
}

// Unfinished returns the storage tables of o's database with an
// unfinished mutation (on a cluster, on any node), with when the oldest
// was issued (the server's clock).
func Unfinished(ctx context.Context, conn Querier, o migrations.Options) (map[string]time.Time, error) {
	return mutating(ctx, conn, o)
}

// mutating returns the storage tables of o's database with an unfinished
// mutation (on a cluster, on any node), with when the oldest was issued.
func mutating(ctx context.Context, conn Querier, o migrations.Options) (map[string]time.Time, error) {
	src := "system.mutations"
	if o.Cluster != "" {
		src = fmt.Sprintf("cluster('%s', system.mutations)", o.Cluster)
	}
	rows, err := conn.Query(ctx, "SELECT table, min(create_time) FROM "+src+" WHERE database = ? AND is_done = 0 GROUP BY table", o.Database)
	if err != nil {
		return nil, fmt.Errorf("look up queued deletes: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			t  string
			at time.Time
		)
		if err := rows.Scan(&t, &at); err != nil {
			return nil, fmt.Errorf("look up queued deletes: %w", err)
		}
		out[t] = at
	}
	return out, rows.Err()
}
