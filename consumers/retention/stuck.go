package retention

// Unfinished mutations: the job issues no delete on a table while an
// earlier mutation of it is unfinished (deleteExpired), so a mutation
// that never finishes (one 18.16 retries forever after a failure, a TTL
// materialization) would silently stop the table's expiry. Each run
// reports, by table, when its oldest unfinished mutation was issued
// (audittrail_writer_retention_mutation_pending_since_timestamp_seconds),
// which the AuditTrailRetentionDeleteStuck alert watches.

import (
	"context"
	"fmt"
	"time"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// mutatedTables are the tables the job deletes from with mutations.
func mutatedTables() []string {
	out := []string{migrations.Table, migrations.IDsTable, migrations.LeavesTable, migrations.KeptTable,
		migrations.KeptLeavesTable, migrations.HashesTable}
	for _, l := range migrations.Lookups {
		out = append(out, l.Table)
	}
	return out
}

// observeMutations sets the metric from system.mutations (on a cluster,
// every node's).
func (e *Enforcer) observeMutations(ctx context.Context) error {
	src := "system.mutations"
	if e.schema.Cluster != "" {
		src = fmt.Sprintf("cluster('%s', system.mutations)", e.schema.Cluster)
	}
	rows, err := e.conn.Query(ctx, "SELECT table, min(create_time) FROM "+src+" WHERE database = ? AND is_done = 0 GROUP BY table", e.database)
	if err != nil {
		return fmt.Errorf("look up unfinished mutations: %w", err)
	}
	defer rows.Close()
	since := map[string]time.Time{}
	for rows.Next() {
		var (
			table string
			t     time.Time
		)
		if err := rows.Scan(&table, &t); err != nil {
			return fmt.Errorf("look up unfinished mutations: %w", err)
		}
		since[table] = t
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up unfinished mutations: %w", err)
	}
	for _, table := range mutatedTables() {
		v := 0.0
		if t, ok := since[e.schema.StorageTable(table)]; ok {
			v = float64(t.Unix())
		}
		e.m.mutationSince.WithLabelValues(table).Set(v)
	}
	return nil
}
