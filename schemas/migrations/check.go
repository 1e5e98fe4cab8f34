package migrations

// Checking that a database holds the current schema, for services that
// read it but leave changing it to the migrate job and the writer.

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// BehindError says which migrations a database lacks: its schema is
// older than this binary needs. A database with migrations this binary
// does not know (a newer schema) is not behind.
type BehindError struct {
	Database string
	Missing  []uint32
	// Newest is the newest version recorded (0: none).
	Newest uint32
}

func (e *BehindError) Error() string {
	names := map[uint32]string{}
	for _, m := range All() {
		names[m.Version] = m.Name
	}
	list := make([]string, len(e.Missing))
	for i, v := range e.Missing {
		list[i] = fmt.Sprintf("%d (%s)", v, names[v])
	}
	what := "migration"
	if len(list) > 1 {
		what = "migrations"
	}
	return fmt.Sprintf("database %s lacks %s %s (newest recorded: %d), which this release needs: "+
		"run this release's migrate first (consumers/cmd/migrate; in the image /usr/local/bin/migrate; "+
		"-cluster <name> on a cluster)", e.Database, what, strings.Join(list, ", "), e.Newest)
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
		var newest uint32
		for v := range done {
			newest = max(newest, v)
		}
		return &BehindError{Database: database, Missing: slices.Clip(missing), Newest: newest}
	}
	return nil
}

// Ensure readies the schema for a service's start: with apply it applies
// pending migrations (Apply); without, it only checks (Check) and returns
// the *BehindError of a database older than this binary needs, changing
// nothing. Applied.Versions is empty without apply.
func Ensure(ctx context.Context, conn Conn, o Options, apply bool) (Applied, error) {
	if apply {
		return Apply(ctx, conn, o)
	}
	if err := o.validate(); err != nil {
		return Applied{}, err
	}
	v, err := ServerVersion(ctx, conn)
	if err != nil {
		return Applied{}, err
	}
	return Applied{Server: v}, Check(ctx, conn, o.Database)
}
