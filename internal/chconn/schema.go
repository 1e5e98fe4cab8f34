package chconn

// Readying the schema at a service's start, as AUDITTRAIL_MIGRATE_AT_START
// says: the writer's and the sealer's one way to do it.

import (
	"context"
	"fmt"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// EnsureSchema applies the pending migrations (migrate: the variable's
// default) or, without migrate, only checks that the database holds every
// migration this release needs, then that the server holds every table
// (migrations.Ensure). A database behind fails with a
// *migrations.BehindError naming the missing migrations and the migrate
// command, wrapped to say that the service did not migrate and which
// variable would let it; a table missing although recorded with a
// *migrations.MissingTablesError.
func EnsureSchema(ctx context.Context, conn migrations.Conn, o migrations.Options, migrate bool) (migrations.Applied, error) {
	res, err := migrations.Ensure(ctx, conn, o, migrate)
	switch {
	case err == nil:
		return res, nil
	case migrate:
		return res, fmt.Errorf("apply schema migrations: %w", err)
	}
	return res, fmt.Errorf("schema check (%s=false: this service does not migrate): %w", config.MigrateAtStart.Name, err)
}
