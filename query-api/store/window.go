package store

// Each workspace's read window (its retention policy) and the long-term
// table read beside the events table.

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Policies gives the store each workspace's retention policy; a
// retentionpolicy.Cache does, so that a change is served without a
// restart.
type Policies interface {
	For(ctx context.Context, workspace string) (retentionpolicy.Policy, error)
}

// WithPolicies makes s read each workspace within the window of its own
// policy (its days, or everything under a legal hold) instead of the
// deployment's. It returns s and must be called before s is used.
func (s *Store) WithPolicies(p Policies) *Store {
	s.policies = p
	return s
}

// scope is what one read of a workspace covers, at one instant.
//
// The events table holds the deployment's window; the long-term table
// (migrations.KeptTable) holds the older events of workspaces whose policy
// keeps them longer, and restored events. A read goes to both: to the
// events table over the filter's range inside the workspace's window, to
// the long-term table over the filter's range with the window applied per
// row (keptWindow), since a restored row is served until its kept_until
// day whatever its age.
type scope struct {
	events, kept span
	// windowLo is the window's first instant in ns (math.MinInt64 under
	// a legal hold).
	windowLo int64
	// today is the current UTC day, YYYY-MM-DD.
	today string
	// noKept is set while the long-term table does not exist yet
	// (migration 7 not applied: a rolling deploy).
	noKept bool
}

// scope returns the scope of a read of f now.
func (s *Store) scope(ctx context.Context, f Filter) (scope, error) {
	p := retentionpolicy.Default(f.WorkspaceID, s.days)
	if s.policies != nil {
		var err error
		if p, err = s.policies.For(ctx, f.WorkspaceID); err != nil {
			return scope{}, fmt.Errorf("read the retention policy: %w", err)
		}
	}
	now := s.now().UTC()
	sc := scope{windowLo: math.MinInt64, today: now.Format(time.DateOnly)}
	if !p.Hold {
		sc.windowLo = unixNano(p.Cutoff(now))
	}
	filter := span{lo: math.MinInt64, hi: math.MaxInt64}
	if !f.Since.IsZero() {
		filter.lo = unixNano(f.Since)
	}
	if !f.Until.IsZero() {
		filter.hi = unixNano(f.Until)
	}
	sc.kept, sc.events = filter, filter
	sc.events.lo = max(filter.lo, sc.windowLo)
	if !s.hasKept.Load() {
		var n uint64
		if err := s.queryRow(ctx, []any{&n}, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", s.database, migrations.KeptTable); err != nil {
			return scope{}, fmt.Errorf("look up the long-term table: %w", err)
		}
		// Once created, it stays.
		s.hasKept.Store(n > 0)
		sc.noKept = n == 0
	}
	return sc, nil
}

// empty reports whether the read covers nothing.
func (sc scope) empty() bool { return sc.events.empty() && sc.kept.empty() }

func (sp span) empty() bool { return sp.hi <= sp.lo }

// clip returns sp inside [lo, hi).
func (sp span) clip(lo, hi int64) span { return span{lo: max(sp.lo, lo), hi: min(sp.hi, hi)} }

// keptWindow adds the per-row window of the long-term table: a row of the
// policy's window, or a restored row before its kept_until day.
func (q *query) keptWindow(sc scope) {
	q.and("(timestamp_ns >= ? OR (restored = 1 AND kept_until > toDate(?)))", sc.windowLo, sc.today)
}

// branch is one table of a read with its conditions.
type branch struct {
	table string
	q     query
	// kept marks the long-term table, whose rows carry restored.
	kept bool
}

// restoredColumn is what a branch selects as restored.
func (b branch) restoredColumn() string {
	if b.kept {
		return "restored"
	}
	return "toUInt8(0) AS restored"
}

// branches returns the branches of a read of workspace ws over sp (the
// scope's spans clipped to it): the events table's, from events (the
// events table, or a lookup table to find keys), then the long-term
// table's; a branch with nothing to read is left out. add puts the read's
// own conditions on each (filters, cursor, keys).
func (s *Store) branches(ws, events string, sc scope, sp span, add func(q *query)) []branch {
	var out []branch
	if ev := sc.events.clip(sp.lo, sp.hi); !ev.empty() {
		b := branch{table: events}
		b.q.bounds(ws, ev)
		add(&b.q)
		out = append(out, b)
	}
	if kp := sc.kept.clip(sp.lo, sp.hi); !kp.empty() && !sc.noKept {
		b := branch{table: s.database + "." + migrations.KeptTable, kept: true}
		b.q.bounds(ws, kp)
		b.q.keptWindow(sc)
		add(&b.q)
		out = append(out, b)
	}
	return out
}

// all is the span of every timestamp.
var all = span{lo: math.MinInt64, hi: math.MaxInt64}

// union renders the branches as one table expression: each branch's
// SELECT of cols with its conditions and tail (ORDER BY, LIMIT), joined
// by UNION ALL, and the arguments in order. restored is appended to cols
// when withRestored.
func union(bs []branch, cols string, withRestored bool, tail string) (string, []any) {
	parts := make([]string, len(bs))
	var args []any
	for i, b := range bs {
		c := cols
		if withRestored {
			c += ", " + b.restoredColumn()
		}
		cond, a := b.q.clauses()
		parts[i] = fmt.Sprintf("SELECT * FROM (SELECT %s FROM %s\n%s%s)", c, b.table, cond, tail)
		args = append(args, a...)
	}
	return "(" + strings.Join(parts, "\nUNION ALL\n") + ")", args
}
