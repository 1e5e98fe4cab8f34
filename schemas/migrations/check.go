package migrations

// Checking that a database holds the current schema, for services that
// read it but leave changing it to the migrate job and the writer.

import (
	"context"
	"fmt"
	"slices"
)

// BehindError says which migrations a database lacks.
type BehindError struct {
	Database string
	Missing  []uint32
}

func (e *BehindError) Error() string {
	return fmt.Sprintf("database %s lacks migrations %v: run migrate (consumers/cmd/migrate) or start the writer, which applies them", e.Database, e.Missing)
}

// Check reports whether every migration of All is recorded in database:
// nil when so, a *BehindError naming the missing versions when not (also
// when the database or its bookkeeping table does not exist yet, which
// counts as nothing applied), or the error of the query. It changes
// nothing. Cancelling ctx aborts the query.
func Check(ctx context.Context, conn Conn, database string) error {
	var exists uint8
	if err := conn.QueryRow(ctx, "SELECT count() > 0 FROM system.tables WHERE database = ? AND name = 'schema_migrations'", database).Scan(&exists); err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	done := map[uint32]bool{}
	if exists == 1 {
		var err error
		if done, err = appliedVersions(ctx, conn, database); err != nil {
			return fmt.Errorf("check schema: %w", err)
		}
	}
	var missing []uint32
	for _, m := range All() {
		if !done[m.Version] {
			missing = append(missing, m.Version)
		}
	}
	if len(missing) > 0 {
		return &BehindError{Database: database, Missing: slices.Clip(missing)}
	}
	return nil
}
