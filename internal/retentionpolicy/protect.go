package retentionpolicy

// Deletes queued before a legal hold. The retention job deletes with
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

// Protect copies again, into the same table, every row of workspace
// that a retention delete queued before its hold could delete: in the
// events table (whose lookup tables its views fill again), the leaves and
// the long-term tables, the rows older than the day after the cutoff of
// previous (the policy before the hold, whose window the queued deletes
// followed, at a time before now), and the restored rows kept until
// tomorrow or earlier. It copies only into tables with an unfinished
// mutation, and returns them. A row the mutation already removed is not
// brought back: call it right after the hold is stored. It is
// idempotent (more copies collapse too).
func Protect(ctx context.Context, conn Execer, o migrations.Options, previous Policy, now time.Time) ([]string, error) {
	pending, err := mutating(ctx, conn, o)
	if err != nil {
		return nil, err
	}
	day := 24 * time.Hour
	before := now.UTC().Add(-time.Duration(previous.Days) * day).Truncate(day).Add(day).UnixNano()
	tomorrow := now.UTC().Truncate(day).Add(day).Unix()
	lookups := slices.ContainsFunc(migrations.Lookups, func(l migrations.Lookup) bool { return pending[o.StorageTable(l.Table)] })
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
		if !pending[o.StorageTable(t.name)] && !t.also {
			continue
		}
		q := fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s WHERE workspace_id = ? AND %s",
			o.Database, t.name, t.cols, t.cols, o.Database, t.name, t.cond)
		if err := conn.Exec(ctx, q, append([]any{previous.Workspace}, t.args...)...); err != nil {
			return copied, fmt.Errorf("protect %s's rows in %s from queued deletes: %w", previous.Workspace, t.name, err)
		}
		copied = append(copied, t.name)
	}
	return copied, nil
}

// mutating returns the storage tables of o's database with an unfinished
// mutation (on a cluster, on any node).
func mutating(ctx context.Context, conn Querier, o migrations.Options) (map[string]bool, error) {
	src := "system.mutations"
	if o.Cluster != "" {
		src = fmt.Sprintf("cluster('%s', system.mutations)", o.Cluster)
	}
	rows, err := conn.Query(ctx, "SELECT DISTINCT table FROM "+src+" WHERE database = ? AND is_done = 0", o.Database)
	if err != nil {
		return nil, fmt.Errorf("look up queued deletes: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("look up queued deletes: %w", err)
		}
		out[t] = true
	}
	return out, rows.Err()
}
