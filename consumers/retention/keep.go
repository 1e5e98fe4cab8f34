package retention

// Partition drops under per-workspace retention: before a week of the
// events table (or a day of the integrity log's leaves) is dropped, the
// rows of workspaces whose policy keeps them past the deployment's window
// are copied into the long-term tables, and the rest is archived.

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// copyChunk is how many workspaces one copy names.
const copyChunk = 500

// run is one run's clock and policies, read from ClickHouse at its start.
type run struct {
	now         time.Time
	defaultDays int
	policies    map[string]retentionpolicy.Policy
	// mark identifies the policies read (see unchanged).
	mark policyMark
}

// policy returns ws's policy in this run.
func (r *run) policy(ws string) retentionpolicy.Policy {
	if p, ok := r.policies[ws]; ok {
		return p
	}
	return retentionpolicy.Default(ws, r.defaultDays)
}

// keepFrom returns the oldest timestamp (ns) of ws's events that its
// policy keeps and the deployment's window does not: ok is false when the
// policy keeps nothing past the window; under a hold it is math.MinInt64.
func (r *run) keepFrom(ws string) (from int64, ok bool) {
	p := r.policy(ws)
	switch {
	case !p.Outlives(r.defaultDays):
		return 0, false
	case p.Hold:
		return math.MinInt64, true
	}
	return p.Cutoff(r.now).UnixNano(), true
}

// keepers returns every workspace whose policy keeps events past the
// window, with keepFrom's time.
func (r *run) keepers() map[string]int64 {
	out := map[string]int64{}
	for ws := range r.policies {
		if from, ok := r.keepFrom(ws); ok {
			out[ws] = from
		}
	}
	return out
}

// legacyCutoff is the day before which MoveLegacy may drop an old-layout
// day without copying it: the deployment's cutoff, or earlier when a
// policy keeps events longer (under a hold, no day is dropped: every day
// is moved into the events table, where the week drops copy what the
// policies keep).
func (r *run) legacyCutoff(cutoff string) string {
	for _, from := range r.keepers() {
		if from == math.MinInt64 {
			return "19700101"
		}
		if day := time.Unix(0, from).UTC().Format("20060102"); day < cutoff {
			cutoff = day
		}
	}
	return cutoff
}

// weekRange returns the first instant of week partition id (the Monday)
// and of the week after.
func weekRange(id string) (lo, hi time.Time, err error) {
	end, err := migrations.WeekEnd(id)
	if err != nil {
		return lo, hi, err
	}
	hi, err = time.Parse("20060102", end)
	return hi.AddDate(0, 0, -7), hi, err
}

// weekOfDay returns the week partition id holding a day (YYYYMMDD).
func weekOfDay(day string) (string, error) {
	t, err := time.Parse("20060102", day)
	if err != nil {
		return "", err
	}
	monday := t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
	return strconv.FormatInt(monday.Unix()/86400, 10), nil
}

// dayGroup is what a week partition holds of one workspace on one day.
type dayGroup struct {
	ws     string
	day    time.Time
	oldest int64 // ns
	newest int64 // ns
}

// keepWeek prepares the drop of week partition id of the events table:
// it archives each (workspace, day) whose rows are not all kept, then
// copies the rows the policies keep into the long-term table. It returns
// false (and copies nothing) when an archive failed: the week then stays
// until a later run.
func (e *Enforcer) keepWeek(ctx context.Context, r *run, id string) (bool, error) {
	lo, hi, err := weekRange(id)
	if err != nil {
		return false, err
	}
	week := fmt.Sprintf("timestamp >= toDateTime(%d) AND timestamp < toDateTime(%d)", lo.Unix(), hi.Unix())
	since, settling, err := e.settledBefore(ctx)
	if err != nil {
		return false, err
	}
	// A week with rows stored within the settle time waits (checked again
	// after the copy: a row stored meanwhile may have missed it).
	unsettled := func() (bool, error) {
		if !settling {
			return false, nil
		}
		recent, err := e.arrivedSince(ctx, migrations.Table, "inserted_at", week, since)
		if recent {
			e.log.Info("a week past the window has rows stored just now; it is dropped at a later run", "week", lo.Format(time.DateOnly))
		}
		return recent, err
	}
	if recent, err := unsettled(); recent || err != nil {
		return false, err
	}
	groups, err := e.weekGroups(ctx, lo, hi)
	if err != nil {
		return false, err
	}
	keep := map[string]int64{}
	var archive []dayGroup
	for _, g := range groups {
		from, ok := r.keepFrom(g.ws)
		if !ok || g.oldest < from {
			archive = append(archive, g)
		}
		if ok && g.newest >= from {
			keep[g.ws] = from
		}
	}
	if !e.archive(ctx, archive) {
		return false, nil
	}
	cols := strings.Join(migrations.Events.Columns(), ", ")
	err = e.copyKept(ctx, keep, func(conds string) string {
		return fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s WHERE %s AND (%s)",
			e.database, migrations.KeptTable, cols, cols, e.database, migrations.Table, week, conds)
	})
	if err != nil {
		return false, err
	}
	recent, err := unsettled()
	return !recent && err == nil, err
}

// weekGroups reads the (workspace, day) groups of the events table's rows
// in [lo, hi).
func (e *Enforcer) weekGroups(ctx context.Context, lo, hi time.Time) ([]dayGroup, error) {
	rows, err := e.conn.Query(ctx, fmt.Sprintf("SELECT workspace_id, toUInt32(toDate(timestamp)) AS day, min(timestamp_ns), max(timestamp_ns) FROM %s.%s "+
		"WHERE timestamp >= toDateTime(?) AND timestamp < toDateTime(?) GROUP BY workspace_id, day ORDER BY workspace_id, day",
		e.database, migrations.Table), lo.Unix(), hi.Unix())
	if err != nil {
		return nil, fmt.Errorf("read the workspaces of a week: %w", err)
	}
	defer rows.Close()
	var out []dayGroup
	for rows.Next() {
		var (
			g   dayGroup
			day uint32
		)
		if err := rows.Scan(&g.ws, &day, &g.oldest, &g.newest); err != nil {
			return nil, fmt.Errorf("read the workspaces of a week: %w", err)
		}
		g.day = time.Unix(int64(day)*86400, 0).UTC()
		out = append(out, g)
	}
	return out, rows.Err()
}

// archive passes each (workspace, day) to the archiver, if there is one.
// It reports whether all were archived; it stops at the first failure,
// which it logs and counts.
func (e *Enforcer) archive(ctx context.Context, groups []dayGroup) bool {
	if e.archiver == nil {
		return true
	}
	for _, g := range groups {
		if err := e.archiver.Archive(ctx, g.ws, g.day); err != nil {
			e.m.archiveFailures.Inc()
			e.log.Warn("archive before expiry failed; the day is kept until a later run", "workspace", g.ws, "day", g.day.Format(time.DateOnly), "err", err)
			return false
		}
	}
	return true
}

// copyKept runs the copies insert renders for keep's workspaces, a chunk
// at a time: each chunk's condition keeps a workspace's rows from its
// time (all of them under a hold). A copy that ran before (a run stopped
// between copy and drop) copies equal rows again, which collapse as
// replays do.
func (e *Enforcer) copyKept(ctx context.Context, keep map[string]int64, insert func(conds string) string) error {
	var conds []string
	var args []any
	flush := func() error {
		if len(conds) == 0 {
			return nil
		}
		err := e.conn.Exec(ctx, insert(strings.Join(conds, " OR ")), args...)
		conds, args = conds[:0], args[:0]
		if err != nil {
			return fmt.Errorf("copy kept rows: %w", err)
		}
		return nil
	}
	for _, ws := range sortedKeys(keep) {
		if from := keep[ws]; from == math.MinInt64 {
			conds, args = append(conds, "workspace_id = ?"), append(args, ws)
		} else {
			conds, args = append(conds, "(workspace_id = ? AND timestamp_ns >= ?)"), append(args, ws, from)
		}
		if len(conds) == copyChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// keepLeafDay copies the leaves of day partition day (YYYYMMDD) of the
// integrity log that the policies keep into the long-term leaves table.
// It reports whether the day may be dropped: not when a leaf of it was
// sealed within the settle time (see SetSettle), checked after the copy.
func (e *Enforcer) keepLeafDay(ctx context.Context, r *run, day string) (bool, error) {
	t, err := time.Parse("20060102", day)
	if err != nil {
		return false, err
	}
	since, settling, err := e.settledBefore(ctx)
	if err != nil {
		return false, err
	}
	cols := strings.Join(migrations.Leaves.Columns(), ", ")
	span := fmt.Sprintf("timestamp_ns >= %d AND timestamp_ns < %d", t.UnixNano(), t.AddDate(0, 0, 1).UnixNano())
	err = e.copyKept(ctx, r.keepers(), func(conds string) string {
		return fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT %s FROM %s.%s WHERE %s AND (%s)",
			e.database, migrations.KeptLeavesTable, cols, cols, e.database, migrations.LeavesTable, span, conds)
	})
	if err != nil || !settling {
		return err == nil, err
	}
	recent, err := e.arrivedSince(ctx, migrations.LeavesTable, "sealed_at", span, since)
	return !recent && err == nil, err
}
