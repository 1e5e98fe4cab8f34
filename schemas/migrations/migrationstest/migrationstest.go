// Package migrationstest builds schemas as earlier versions of the
// migrations left them, for tests of the upgrades.
package migrationstest

import (
	"context"
	"fmt"
	"testing"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// BeforeLayout creates the schema as migrations 1 to 4 made it, before the
// events layout (migration 5): the events table in day partitions, no
// lookup tables. Migrations 1 to 4 are recorded, so migrations.Apply runs
// migration 5 only.
func BeforeLayout(t testing.TB, conn migrations.Conn, o migrations.Options) {
	t.Helper()
	ctx := context.Background()
	v, err := migrations.ServerVersion(ctx, conn)
	if err != nil {
		t.Fatal(err)
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
			t.Fatalf("old schema: %v", err)
		}
	}
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations (version, name)", o.Database))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range old {
		if err := batch.Append(m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("record the old migrations: %v", err)
	}
}
