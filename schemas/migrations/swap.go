package migrations

// Putting migration 5's events table in place of the old one while
// writers go on inserting.

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// moveToLayout runs migration 5 on a server. It is idempotent and resumes
// where a previous run stopped, and ingest goes on throughout (writers
// insert into audit_events, whichever table holds that name):
//
//  1. create the lookup tables and the views that fill them from
//     audit_events;
//  2. unless audit_events already has the new layout: create the new
//     events table as NextTable (only one service at a time gets to: see
//     swap), then swap the names: the old table becomes LegacyTable, the
//     new one audit_events; an insert under way finishes in the old table
//     first (18.16) or may still commit into it (see MoveLegacy);
//  3. finish a swap a stopped run left half done (finishSwap);
//  4. create the analysts' view (AnalystView).
//
// The old rows are moved by MoveLegacy afterwards (the retention enforcer
// calls it), a day at a time, while readers read both tables; the copies
// go through audit_events, so the views fill the lookup tables with them.
//
// On 18.16 an insert that meets the creation of a view may fail (the
// server registers the view before it exists); it writes nothing, and the
// writer retries it as any failed insert.
func moveToLayout(ctx context.Context, conn Conn, o Options, v Version) error {
	for _, s := range append(createLookups(o, v), createViews(o)...) {
		if err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("create the lookup tables: %w", err)
		}
	}
	weekly, err := hasLayout(ctx, conn, o)
	if err != nil {
		return fmt.Errorf("look up the events layout: %w", err)
	}
	if !weekly {
		if err := swap(ctx, conn, o, v); err != nil {
			return fmt.Errorf("swap: %w", err)
		}
	}
	if err := finishSwap(ctx, conn, o); err != nil {
		return fmt.Errorf("finish the swap: %w", err)
	}
	if err := dropEmptyLegacy(ctx, conn, o); err != nil {
		return fmt.Errorf("drop the empty %s: %w", LegacyTable, err)
	}
	return ensureAnalystView(ctx, conn, o)
}

// dropEmptyLegacy drops LegacyTable at once when it holds no row (a new
// deployment, whose old table was created empty by migration 1), so that
// readers use the lookup tables from the start. A table with rows is left
// to MoveLegacy, which copies them outside of service starts.
func dropEmptyLegacy(ctx context.Context, conn Conn, o Options) error {
	exists, err := tableExists(ctx, conn, o.Database, o.StorageTable(LegacyTable))
	if err != nil {
		return err
	}
	if !exists {
		return dropStaleFront(ctx, conn, o)
	}
	var rows uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+legacySource(o)).Scan(&rows); err != nil {
		if gone, _ := legacyGone(ctx, conn, o); gone {
			return nil // another service dropped it
		}
		return err
	}
	if rows > 0 {
		return nil
	}
	_, err = MoveLegacy(ctx, conn, o, "00000000") // no day to copy: drops the table, if still empty
	return err
}

// swapWait bounds how long swap waits for another service's swap, and
// staleNext is the age from which a new events table nobody swapped in is
// taken for the leftover of a stopped run.
const (
	swapWait  = 2 * time.Minute
	staleNext = 10 * time.Minute
)

// swap creates the new events table under NextTable and swaps it in. The
// CREATE has no IF NOT EXISTS: the service that creates the table is the
// one that swaps, so two services applying the migration at once never
// both swap (the second would swap the live table out). When the table
// exists, another service is swapping: swap waits (up to swapWait) until
// audit_events has the new layout, or takes the table over when it is
// older than staleNext and empty (a stopped run's leftover). Right before
// the swap it checks the layout again.
func swap(ctx context.Context, conn Conn, o Options, v Version) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(swapWait)
	for {
		created, err := createNextExclusive(ctx, conn, o, v)
		if err != nil {
			return err
		}
		if created {
			break
		}
		weekly, err := hasLayout(ctx, conn, o)
		if err != nil || weekly {
			return err // another service swapped
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swap the events tables: %s exists and %s still has the old layout after %s: another service is moving the layout; retry later", NextTable, Table, swapWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	exchange, err := canExchange(ctx, conn, o, v)
	if err != nil {
		return err
	}
	if weekly, err := hasLayout(ctx, conn, o); err != nil || weekly {
		return err
	}
	for _, q := range swapStatements(o, exchange) {
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("swap the events tables: %w", err)
		}
	}
	return nil
}

// createNextExclusive creates NextTable and reports whether this call
// created it; false when it exists (another service's, fresh). A leftover
// older than staleNext, empty and with the new layout is dropped and
// created again.
func createNextExclusive(ctx context.Context, conn Conn, o Options, v Version) (bool, error) {
	var n, rows uint64
	var age int64
	var err error
	for range 5 { // see tableHas: system.tables races with DDL on 18.16
		err = conn.QueryRow(ctx, `SELECT count(), max(toInt64(now()) - toInt64(metadata_modification_time)) FROM system.tables WHERE database = ? AND name = ?`,
			o.Database, o.StorageTable(NextTable)).Scan(&n, &age)
		if err == nil || !strings.Contains(err.Error(), "doesn't exist") {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", NextTable, err)
	}
	if n > 0 {
		weekly, err := tableHas(ctx, conn, o.Database, o.StorageTable(NextTable), "PARTITION BY "+WeekPartition)
		if err != nil || !weekly || time.Duration(age)*time.Second < staleNext {
			return false, err
		}
		if rows, err = nextRows(ctx, conn, o); err != nil || rows > 0 {
			return false, err
		}
		if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE %s.%s%s", o.Database, o.StorageTable(NextTable), o.OnCluster())); err != nil {
			return false, fmt.Errorf("drop the stale %s: %w", NextTable, err)
		}
	}
	for _, s := range createNext(o, v) {
		if err := conn.Exec(ctx, s); err != nil {
			if strings.Contains(err.Error(), "already exists") {
				return false, nil
			}
			return false, fmt.Errorf("create %s: %w", NextTable, err)
		}
	}
	return true, nil
}

// finishSwap completes what a stopped run left once audit_events has the
// new layout: the old table still under NextTable (stopped between
// EXCHANGE and RENAME) is renamed to LegacyTable, and an empty new-layout
// table under NextTable (created by a service that found the swap done
// before its own) is dropped.
func finishSwap(ctx context.Context, conn Conn, o Options) error {
	exists, err := tableExists(ctx, conn, o.Database, o.StorageTable(NextTable))
	if err != nil || !exists {
		return err
	}
	weekly, err := tableHas(ctx, conn, o.Database, o.StorageTable(NextTable), "PARTITION BY "+WeekPartition)
	if err != nil {
		return err
	}
	if !weekly {
		q := fmt.Sprintf("RENAME TABLE %[1]s.%[2]s TO %[1]s.%[3]s%[4]s", o.Database, o.StorageTable(NextTable), o.StorageTable(LegacyTable), o.OnCluster())
		for _, q := range append([]string{q}, legacyFront(o)...) {
			if err := conn.Exec(ctx, q); err != nil {
				if exists, xerr := tableExists(ctx, conn, o.Database, o.StorageTable(NextTable)); xerr == nil && !exists {
					return nil // another service renamed it
				}
				return fmt.Errorf("rename the old events table to %s: %w", LegacyTable, err)
			}
		}
		return nil
	}
	if rows, err := nextRows(ctx, conn, o); err != nil || rows > 0 {
		return err
	}
	if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, o.StorageTable(NextTable), o.OnCluster())); err != nil {
		return fmt.Errorf("drop the unused %s: %w", NextTable, err)
	}
	return nil
}

// nextRows counts the rows of NextTable; a table gone meanwhile (another
// service swapped or dropped it) counts as holding rows, so it is left
// alone.
func nextRows(ctx context.Context, conn Conn, o Options) (uint64, error) {
	var rows uint64
	err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s.%s", o.Database, o.StorageTable(NextTable))).Scan(&rows)
	if err != nil {
		if exists, xerr := tableExists(ctx, conn, o.Database, o.StorageTable(NextTable)); xerr == nil && !exists {
			return 1, nil
		}
		return 0, fmt.Errorf("count the rows of %s: %w", NextTable, err)
	}
	return rows, nil
}

// canExchange reports whether the database swaps names with EXCHANGE
// TABLES: an Atomic database (the default from 20.10 on), where renaming
// two tables in one RENAME is not atomic. On 18.16 one RENAME of two
// tables is.
func canExchange(ctx context.Context, conn Conn, o Options, v Version) (bool, error) {
	if !v.AtLeast(20, 10) {
		return false, nil
	}
	var engine string
	if err := conn.QueryRow(ctx, "SELECT engine FROM system.databases WHERE name = ?", o.Database).Scan(&engine); err != nil {
		return false, fmt.Errorf("look up the engine of database %s: %w", o.Database, err)
	}
	return engine == "Atomic", nil
}

// swapStatements put the new events table in place of the old so that an
// insert finds one or the other, never neither: one RENAME of both tables
// (18.16 runs it under a global lock), or on an Atomic database EXCHANGE
// TABLES, after which the old table is renamed away from NextTable.
func swapStatements(o Options, exchange bool) []string {
	if exchange {
		return append([]string{
			fmt.Sprintf("EXCHANGE TABLES %[1]s.%[2]s AND %[1]s.%[3]s%[4]s", o.Database, o.StorageTable(Table), o.StorageTable(NextTable), o.OnCluster()),
			fmt.Sprintf("RENAME TABLE %[1]s.%[2]s TO %[1]s.%[3]s%[4]s", o.Database, o.StorageTable(NextTable), o.StorageTable(LegacyTable), o.OnCluster()),
		}, legacyFront(o)...)
	}
	return append([]string{fmt.Sprintf("RENAME TABLE %[1]s.%[2]s TO %[1]s.%[3]s, %[1]s.%[4]s TO %[1]s.%[2]s%[5]s", o.Database,
		o.StorageTable(Table), o.StorageTable(LegacyTable), o.StorageTable(NextTable), o.OnCluster())}, legacyFront(o)...)
}

// legacyFront is, on a cluster, the Distributed table LegacyTable in
// front of every node's old storage table, through which readers read the
// days not moved yet; nothing on a single server.
func legacyFront(o Options) []string {
	if o.Cluster == "" {
		return nil
	}
	return []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %[1]s.%[2]s%[3]s AS %[1]s.%[4]s ENGINE = Distributed('%[5]s', '%[1]s', '%[4]s', %[6]s)",
		o.Database, LegacyTable, o.OnCluster(), o.StorageTable(LegacyTable), o.Cluster, ShardKey)}
}

// dropStaleFront drops, on a cluster, a LegacyTable front whose storage
// table is gone from this node: a service that migrated at the same time
// as another one dropping the moved table can create the front again
// after the drop (its CREATE comes later in the DDL queue), and readers
// would then fail on it. A front never precedes its storage table (each
// node runs the RENAME before the CREATE), so one without it is stale.
func dropStaleFront(ctx context.Context, conn MoveConn, o Options) error {
	if o.Cluster == "" {
		return nil
	}
	front, err := tableExists(ctx, conn, o.Database, LegacyTable)
	if err != nil || !front {
		return err
	}
	if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s.%s%s", o.Database, LegacyTable, o.OnCluster())); err != nil {
		return fmt.Errorf("drop the stale %s in front of a dropped table: %w", LegacyTable, err)
	}
	return nil
}

// hasLayout reports whether the events table (the storage table on a
// cluster) already has migration 5's week partitions.
func hasLayout(ctx context.Context, conn Conn, o Options) (bool, error) {
	return tableHas(ctx, conn, o.Database, o.StorageTable(Table), "PARTITION BY "+WeekPartition)
}
