// Package retention enforces the retention window on ClickHouse.
//
// It drops whole week partitions of the events table and of its lookup
// tables (migration 5, the events layout) once every event in them is
// older than the window, and day partitions of the id registry. It works
// on every server version; servers with TTL support also expire rows by the
// tables' TTL. Rows in the one partially expired week stay on disk until
// the week has left the window, and the read path never returns them (it
// filters by the window itself).
//
// While an old-layout events table is being moved into the new one
// (migrations.MoveLegacy), each run moves what is left of it.
//
// The integrity log's leaf rows are partitioned by the event's day and go
// with the events; the stored hashes of tiles whose events all expired are
// then reduced to the tiles' own hashes (ReduceLog).
//
// On a cluster (see OnCluster) it lists the partitions of every shard and
// drops them from the replicated storage tables ON CLUSTER.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Conn is what the enforcer needs of a ClickHouse connection.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) error
	QueryRow(ctx context.Context, query string, args ...any) driver.Row
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Enforcer drops expired partitions. It is safe for concurrent use; several
// writer instances may run it at once (dropping a partition twice is a no-op).
type Enforcer struct {
	conn     Conn
	database string
	schema   migrations.Options
	days     int
	now      func() time.Time
	log      *slog.Logger
	m        *metrics
	archiver Archiver
	settle   time.Duration // see SetSettle
	// protected is, by workspace, the unfinished mutations it was last
	// protected from (protectChanged), under protectMu.
	protectMu sync.Mutex
	protected map[string]string
	// reduced is set once ReduceLog ran in this process; later runs reduce
	// only after leaves were dropped or deleted.
	reduced atomic.Bool
	// reducePending is set when a run issued deletes of leaves: the next
	// run reduces again.
	reducePending atomic.Bool
}

// New returns an enforcer for database.audit_events with a window of days.
func New(conn Conn, database string, days int, now func() time.Time, log *slog.Logger) *Enforcer {
	if now == nil {
		now = time.Now
	}
	return &Enforcer{conn: conn, database: database, schema: migrations.Options{Database: database}, days: days, now: now, log: log, m: newMetrics(days),
		protected: map[string]string{}}
}

// OnCluster makes e work on the schema migrations created on cluster (the
// name in remote_servers; empty means a single server): partitions are
// listed on one replica of every shard through the cluster table function
// and dropped with ALTER TABLE ... ON CLUSTER ... DROP PARTITION on the
// replicated storage table (audit_events_local). It returns e and must be
// called before e is used.
func (e *Enforcer) OnCluster(cluster string) *Enforcer {
	e.schema.Cluster = cluster
	return e
}

var dayPartition = regexp.MustCompile(`^\d{8}$`)

// Cutoff returns the oldest day (YYYYMMDD, UTC) that may still hold events
// inside the window: day partitions before it are dropped, and week
// partitions that end before it.
func (e *Enforcer) Cutoff() string {
	return e.now().UTC().Add(-time.Duration(e.days) * 24 * time.Hour).Format("20060102")
}

// RunOnce drops every partition entirely outside the window and returns
// the ids it dropped from the events table. The lookup tables' weeks go
// with the events table's; the id registry's day partitions go a day later
// (migrations.IDsRetentionDays), the offsets record's after
// migrations.OffsetsRetentionDays days stored; the integrity log's leaves go with their
// events' days, and then its expired tiles are reduced (ReduceLog). Then it
// moves what is left of an old-layout events table (migrations.MoveLegacy).
// Each run is counted in the job's metrics (Collectors).
func (e *Enforcer) RunOnce(ctx context.Context) ([]string, error) {
	if err := e.observeMutations(ctx); err != nil {
		e.log.Warn("retention could not read the unfinished mutations", "err", err)
	}
	dropped, oldest, err := e.runOnce(ctx)
	e.m.observe(e.now(), oldest, err)
	return dropped, err
}

func (e *Enforcer) runOnce(ctx context.Context) (dropped []string, oldest string, err error) {
	// A binary from before migration 7 restarting during an upgrade sets
	// the tables' TTL back to its window: restore the backstop first.
	if err := migrations.AssertBackstopTTL(ctx, e.conn, e.schema); err != nil {
		return nil, "", err
	}
	mark, err := e.policyMark(ctx)
	if err != nil {
		return nil, "", err
	}
	policies, err := retentionpolicy.All(ctx, e.conn, e.database)
	if err != nil {
		return nil, "", err
	}
	r := &run{now: e.now().UTC(), defaultDays: e.days, policies: policies, mark: mark}
	e.protectChanged(ctx, r)
	cutoff := e.Cutoff()
	dropped, kept, held, err := e.dropWeeks(ctx, r, weekBefore(cutoff))
	if err != nil {
		return dropped, "", fmt.Errorf("%s: %w", migrations.Table, err)
	}
	oldest = oldestDay(kept)
	// A week kept back (its archive failed) keeps its lookup rows and
	// leaves too.
	expired := func(id string) bool { return weekBefore(cutoff)(id) && !held[id] }
	for _, l := range migrations.Lookups {
		if _, _, err := e.dropExpired(ctx, r, l.Table, expired); err != nil {
			return dropped, "", fmt.Errorf("%s: %w", l.Table, err)
		}
	}
	idsCutoff := r.now.Add(-time.Duration(migrations.IDsRetentionDays(e.days)) * 24 * time.Hour).Format("20060102")
	if _, _, err := e.dropExpired(ctx, nil, migrations.IDsTable, dayBefore(idsCutoff)); err != nil {
		return dropped, "", fmt.Errorf("%s: %w", migrations.IDsTable, err)
	}
	// The offsets record is the sealer's shortcut, not the trail: a
	// failed drop is retried at the next run and does not hold back the
	// workspaces' expiry and the log's retention below.
	offsetsCutoff := r.now.Add(-migrations.OffsetsRetentionDays * 24 * time.Hour).Format("20060102")
	if _, _, err := e.dropExpired(ctx, nil, migrations.OffsetsTable, dayBefore(offsetsCutoff)); err != nil {
		e.log.Warn("retention could not drop the offsets record's expired days; retried at the next run", "table", migrations.OffsetsTable, "err", err)
	}
	deleted, err := e.expireWorkspaces(ctx, r)
	if err != nil {
		return dropped, "", err
	}
	if err := e.retainLog(ctx, r, expired, deleted); err != nil {
		return dropped, "", err
	}
	moved, err := migrations.MoveLegacy(ctx, e.conn, e.schema, r.legacyCutoff(cutoff))
	if err != nil {
		return dropped, "", err
	}
	if len(moved) > 0 {
		e.log.Info("moved days of the old events table into the events layout", "days", moved)
	}
	return dropped, oldest, nil
}

// dropWeeks drops the events table's week partitions that expired says
// are past the window, each after keepWeek archived what expires of it
// and copied what the policies keep. It returns the weeks dropped, those
// kept, and among them those held back by a failed archive.
func (e *Enforcer) dropWeeks(ctx context.Context, r *run, expired func(id string) bool) (dropped, kept []string, held map[string]bool, err error) {
	held = map[string]bool{}
	dropped, kept, derr := e.dropExpired(ctx, r, migrations.Table, func(id string) bool {
		if err != nil || !expired(id) {
			return false
		}
		var ok bool
		if ok, err = e.keepWeek(ctx, r, id); !ok {
			held[id] = true
		}
		return ok
	})
	return dropped, kept, held, errors.Join(err, derr)
}

// retainLog drops the integrity log's leaf rows of days whose week
// expired says is past the window (they go with their events, after the
// policies' leaves were copied to the long-term table), and then reduces
// its expired tiles: on the first run, after leaves went, and while
// deletes of leaves are pending.
func (e *Enforcer) retainLog(ctx context.Context, r *run, expired func(week string) bool, deleted []string) (err error) {
	leaves, _, derr := e.dropExpired(ctx, r, migrations.LeavesTable, func(day string) bool {
		if err != nil || !dayPartition.MatchString(day) {
			return false
		}
		week, werr := weekOfDay(day)
		if werr != nil || !expired(week) {
			return false
		}
		var ok bool
		ok, err = e.keepLeafDay(ctx, r, day)
		return ok
	})
	if err = errors.Join(err, derr); err != nil {
		return fmt.Errorf("%s: %w", migrations.LeavesTable, err)
	}
	// A tile's times note goes with the week of its newest event: every
	// event of the tile expired, and its newest note proves it. Not a week
	// held back (its archive failed). The notes of workspaces kept longer
	// go at the same time (docs/retention.md, known gaps).
	if _, _, err := e.dropExpired(ctx, r, migrations.TileTimesTable, expired); err != nil {
		return fmt.Errorf("%s: %w", migrations.TileTimesTable, err)
	}
	deletesLeaves := slices.Contains(deleted, migrations.LeavesTable) || slices.Contains(deleted, migrations.KeptLeavesTable)
	if len(leaves) == 0 && !deletesLeaves && e.reduced.Load() && !e.reducePending.Load() {
		return nil
	}
	// A delete of leaves is a mutation: the leaves are gone at a later
	// run, which reduces again.
	e.reducePending.Store(deletesLeaves)
	reduced, err := e.ReduceLog(ctx)
	if err != nil {
		return err
	}
	e.reduced.Store(true)
	if len(reduced) > 0 {
		e.log.Info("retention reduced expired tiles of the integrity log", "workspaces", len(reduced))
	}
	return nil
}

// oldestDay is the first day (YYYYMMDD) of the oldest of the events
// table's partitions kept (day or week partitions), "" when none.
func oldestDay(kept []string) string {
	oldest := ""
	for _, id := range kept {
		day := id
		if !dayPartition.MatchString(id) {
			end, err := migrations.WeekEnd(id)
			if err != nil {
				continue
			}
			t, _ := time.Parse("20060102", end)
			day = t.AddDate(0, 0, -7).Format("20060102")
		}
		if oldest == "" || day < oldest {
			oldest = day
		}
	}
	return oldest
}

// dayBefore says whether a day partition (YYYYMMDD) is entirely before
// cutoff.
func dayBefore(cutoff string) func(id string) bool {
	return func(id string) bool { return dayPartition.MatchString(id) && id < cutoff }
}

// weekBefore says whether a week partition (migrations.WeekPartition: the
// day number of its Monday) is entirely before cutoff: its last day is.
func weekBefore(cutoff string) func(id string) bool {
	return func(id string) bool {
		end, err := migrations.WeekEnd(id)
		return err == nil && end <= cutoff
	}
}

// dropExpired drops the table's partitions that expired says are entirely
// before the window; on a cluster, those of its storage table on every
// shard. It returns the ids it dropped and those it kept.
//
// With a run (not nil), each drop first checks that the policies are still
// those the run read (unchanged), and stops with ErrPoliciesChanged if not.
func (e *Enforcer) dropExpired(ctx context.Context, r *run, name string, expired func(id string) bool) (dropped, kept []string, err error) {
	ids, err := migrations.Partitions(ctx, e.conn, e.schema, name)
	if err != nil {
		return nil, nil, err
	}
	table := e.schema.StorageTable(name)
	for _, id := range ids {
		if !expired(id) {
			kept = append(kept, id)
			continue
		}
		if err := e.unchanged(ctx, r); err != nil {
			return dropped, kept, err
		}
		q := fmt.Sprintf("ALTER TABLE %s.%s%s DROP PARTITION ID '%s'", e.database, table, e.schema.OnCluster(), id)
		if err := e.conn.Exec(ctx, q); err != nil {
			return dropped, kept, fmt.Errorf("drop partition %s: %w", id, err)
		}
		dropped = append(dropped, id)
	}
	return dropped, kept, nil
}

// Run calls RunOnce now and then every interval until ctx ends. Failures are
// logged and retried at the next tick.
func (e *Enforcer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		dropped, err := e.RunOnce(ctx)
		if errors.Is(err, ErrPoliciesChanged) && ctx.Err() == nil {
			e.log.Info("retention policies changed during the run; running again with the new ones")
			dropped, err = e.RunOnce(ctx)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			e.log.Warn("retention run failed", "err", err)
		case len(dropped) > 0:
			e.log.Info("retention dropped expired partitions", "partitions", dropped, "window_days", e.days)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
