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

// MissingTablesError says which tables of the schema a server lacks
// although every migration is recorded: dropped by hand, or a cluster node
// added since the migrations ran (schema_migrations is replicated to it,
// the tables are not created on it).
type MissingTablesError struct {
	Database string
	Tables   []string
}

func (e *MissingTablesError) Error() string {
	return fmt.Sprintf("database %s records every migration this release needs, but this server lacks %s: "+
		"run this release's migrate -reapply (with -cluster <name> on a cluster), which creates them",
		e.Database, strings.Join(e.Tables, ", "))
}

// Tables are the tables and views the services read and write once every
// migration of All is applied, under the names they use (on a cluster,
// the Distributed tables): every table the migrations create but
// schema_migrations and AnalystView, which only analysts read and which a
// migrating start drops and creates again when the retention window
// changed.
func Tables() []string {
	out := []string{Table, IDsTable, PartitionCountsTable}
	for _, l := range Lookups {
		out = append(out, l.Table, l.View())
	}
	return append(out, LeavesTable, HashesTable, CheckpointsTable, RetentionTable, KeptTable, KeptLeavesTable,
		TileTimesTable, TileNewestTable, OffsetsTable)
}

// Check reports whether every migration of All is recorded in database
// and the server holds every table of Tables: nil when so, a
// *BehindError naming the missing versions when not (also when the
// database or its bookkeeping table does not exist yet, which counts as
// nothing applied), a *MissingTablesError naming the tables missing
// although recorded, or the error of a query. A schema newer than this
// release (a version after the last of All recorded) passes without the
// table check. It changes nothing. Cancelling ctx aborts the queries.
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
	var newest uint32
	for v := range done {
		newest = max(newest, v)
	}
	if len(missing) > 0 {
		return &BehindError{Database: database, Missing: slices.Clip(missing), Newest: newest}
	}
	if all := All(); newest > all[len(all)-1].Version {
		// A newer release's schema: its migrations may have reshaped
		// the tables this release lists, and this release's -reapply
		// would undo them.
		return nil
	}
	return checkTables(ctx, conn, database)
}

// checkTables returns the *MissingTablesError of the tables of Tables
// this server lacks. On 18.16 reading system.tables fails with "doesn't
// exist" when a table of the database is renamed or dropped meanwhile (as
// while another service applies migration 5); it is read again then.
func checkTables(ctx context.Context, conn Conn, database string) error {
	var names []string
	var err error
	for range 5 {
		if names, err = tableNames(ctx, conn, database); err == nil || !strings.Contains(err.Error(), "doesn't exist") {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	var missing []string
	for _, t := range Tables() {
		if !slices.Contains(names, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return &MissingTablesError{Database: database, Tables: missing}
	}
	return nil
}

// tableNames lists database's tables on this server.
func tableNames(ctx context.Context, conn Conn, database string) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ?", database)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// Ensure readies the schema for a service's start: with apply it applies
// pending migrations (Apply); without, it changes nothing and returns the
// *BehindError of a database older than this binary needs. Either way it
// then checks the tables (Check): a *MissingTablesError names those
// missing although recorded. Applied.Versions is empty without apply.
func Ensure(ctx context.Context, conn Conn, o Options, apply bool) (Applied, error) {
	if apply {
		res, err := Apply(ctx, conn, o)
		if err != nil {
			return res, err
		}
		return res, Check(ctx, conn, o.Database)
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
