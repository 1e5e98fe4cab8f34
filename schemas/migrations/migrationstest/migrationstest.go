// Package migrationstest builds schemas as earlier versions of the
// migrations left them, for tests and benchmarks of the upgrades.
package migrationstest

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// BeforeLayout creates the schema as migrations 1 to 4 made it, before the
// events layout (migration 5): the events table in day partitions, no
// lookup tables. Migrations 1 to 4 are recorded, so migrations.Apply runs
// migration 5 only.
func BeforeLayout(ctx context.Context, conn migrations.Conn, o migrations.Options) error {
	v, err := migrations.ServerVersion(ctx, conn)
	if err != nil {
		return err
	}
	stmts := migrations.Prepare(o)
	old := migrations.All()[:4]
	for _, m := range old {
		if len(m.Adds) == 0 { // the CREATE of migration 1 has the added columns
			stmts = append(stmts, m.Statements(o, v)...)
		}
	}
	for _, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("old schema: %w", err)
		}
	}
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name)", o.Database))
	if err != nil {
		return err
	}
	for _, m := range old {
		if err := batch.Append(m.Version, m.Name); err != nil {
			_ = batch.Abort()
			return err
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record the old migrations: %w", err)
	}
	return nil
}
