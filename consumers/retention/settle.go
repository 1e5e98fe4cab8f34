package retention

// Rows that arrive while a run expires their days. An event may be stored
// in a week the job is about to drop (a workspace that keeps it past the
// deployment's window: a backfill, a consumer lag), or in a day whose
// expiring rows it has just archived (a late backdated event). With a
// settle time (SetSettle), the job never drops a week, nor a leaf day,
// holding a row stored within the settle time before the drop's check
// (it is copied and dropped at a later run, and meanwhile the sealer
// reads it back from the events table and gives it its leaf); and its
// deletes of events and leaves name only rows stored before the settle
// time before it read what to archive, so a row stored meanwhile is
// archived (a new part of its day) and deleted at a later run.
//
// The events' inserted_at is the server's clock at the insert; the
// leaves' sealed_at is the sealer's clock, whose skew the settle time
// absorbs. A row stored in the instant between the last check and its
// week's drop is not covered (ClickHouse has no conditional drop); see
// docs/retention.md.

import (
	"context"
	"fmt"
	"time"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// DefaultSettle is the settle time the writer's retention job uses: far
// longer than an insert and the sealer's usual read-back, short enough
// that a held-back week drops at the next hourly run after its last
// arrival settled.
const DefaultSettle = 10 * time.Minute

// SetSettle makes e leave alone the rows stored within d before a drop or
// a delete (see above); 0, the default, turns the checks off (every row
// is taken as settled). It returns e and must be called before e is used.
func (e *Enforcer) SetSettle(d time.Duration) *Enforcer {
	e.settle = max(d, 0)
	return e
}

// settledBefore returns the time before which stored rows count as
// settled: the server's clock less the settle time; ok is false when
// the checks are off.
func (e *Enforcer) settledBefore(ctx context.Context) (since time.Time, ok bool, err error) {
	if e.settle == 0 {
		return time.Time{}, false, nil
	}
	var now time.Time
	if err := e.conn.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil {
		return time.Time{}, false, fmt.Errorf("read the server's clock: %w", err)
	}
	return now.Add(-e.settle).Truncate(time.Second), true, nil
}

// arrivedSince reports whether table has rows in span (a condition on
// its columns) whose col (inserted_at, sealed_at) is at or after since.
func (e *Enforcer) arrivedSince(ctx context.Context, table, col, span string, since time.Time) (bool, error) {
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM %s.%s WHERE %s AND %s >= toDateTime(?)", e.database, table, span, col)
	if err := e.conn.QueryRow(ctx, q, since.Unix()).Scan(&n); err != nil {
		return false, fmt.Errorf("look up rows stored since %s in %s: %w", since.Format(time.RFC3339), table, err)
	}
	return n > 0, nil
}

// settledBound is the condition deleteExpired adds on table: only rows
// stored before since (nil when the checks are off or the table has no
// time of storage: the lookup tables, whose rows only index events, and
// the id registry).
func settledBound(table string, since time.Time, ok bool) *expiry {
	if !ok {
		return nil
	}
	switch table {
	case migrations.Table, migrations.KeptTable:
		return &expiry{cond: "inserted_at < toDateTime(?)", args: []any{since.Unix()}}
	case migrations.LeavesTable, migrations.KeptLeavesTable:
		return &expiry{cond: "sealed_at < toDateTime(?)", args: []any{since.Unix()}}
	}
	return nil
}
