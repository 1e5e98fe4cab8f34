// Package retentionpolicy reads and writes the per-workspace retention
// policies of migration 7 (table audit_retention): how many days a
// workspace's events are kept, and whether a legal hold keeps all of them.
//
// The operator sets policies (the admin API); the read API and the
// retention job read them. A workspace without a policy row has the
// deployment's default window (AUDITTRAIL_RETENTION_DAYS) and no hold.
// Every change appends a row whose version is the change's time in
// nanoseconds; the newest row of a workspace is in force, so the table is
// also the history of its changes. docs/retention.md describes the rules.
package retentionpolicy

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// The bounds of a workspace's retention, in days.
const (
	MinDays = 1
	MaxDays = migrations.MaxRetentionDays
)

// Bounds of the free-text fields, in characters.
const (
	MaxHoldReason = 1000
	MaxChangedBy  = 200
)

// Querier is what reading policies needs of a ClickHouse connection.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Conn is what writing policies (Set) needs of a ClickHouse connection.
type Conn interface {
	Querier
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// Policy is a workspace's retention: its events are kept Days days after
// their timestamp, and none expire while Hold is set. HoldReason says why
// the hold was placed; ChangedBy and ChangedAt say who changed the policy
// last and when (zero for the default policy).
type Policy struct {
	Workspace  string
	Days       int
	Hold       bool
	HoldReason string
	ChangedBy  string
	ChangedAt  time.Time
}

// Default is the policy of a workspace without one of its own.
func Default(workspace string, days int) Policy {
	return Policy{Workspace: workspace, Days: days}
}

// Keeps reports whether p keeps an event of time ts at now: under a hold
// every event, else those no older than Days days.
func (p Policy) Keeps(ts, now time.Time) bool {
	return p.Hold || !ts.Before(p.Cutoff(now))
}

// Cutoff is the time before which p's events expire at now (for a held
// policy, the time Days alone would give: nothing expires while the hold
// lasts).
func (p Policy) Cutoff(now time.Time) time.Time {
	return now.Add(-time.Duration(p.Days) * 24 * time.Hour)
}

// Outlives reports whether p keeps some events longer than a window of
// defaultDays: a longer window or a hold.
func (p Policy) Outlives(defaultDays int) bool {
	return p.Hold || p.Days > defaultDays
}

// ErrInvalid is wrapped by Validate's errors; a *FieldError names the
// field.
var ErrInvalid = errors.New("invalid retention policy")

// FieldError is an invalid field of a Policy.
type FieldError struct {
	Field   string // workspace_id, days, hold_reason, changed_by, changed_at
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// workspacePattern is the read API's workspace id rule.
var workspacePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$`)

// Validate reports the first invalid field of p as a *FieldError.
func (p Policy) Validate() error {
	switch {
	case !workspacePattern.MatchString(p.Workspace):
		return &FieldError{"workspace_id", "must be 1-128 letters, digits, '.', '_', ':' or '-'"}
	case p.Days < MinDays || p.Days > MaxDays:
		return &FieldError{"days", fmt.Sprintf("must be %d-%d, got %d", MinDays, MaxDays, p.Days)}
	case !utf8.ValidString(p.HoldReason) || utf8.RuneCountInString(p.HoldReason) > MaxHoldReason:
		return &FieldError{"hold_reason", fmt.Sprintf("must be valid UTF-8 of at most %d characters", MaxHoldReason)}
	case p.Hold && p.HoldReason == "":
		return &FieldError{"hold_reason", "is required when placing a legal hold"}
	case p.ChangedBy == "" || !utf8.ValidString(p.ChangedBy) || utf8.RuneCountInString(p.ChangedBy) > MaxChangedBy:
		return &FieldError{"changed_by", fmt.Sprintf("must be 1-%d characters of valid UTF-8", MaxChangedBy)}
	case p.ChangedAt.IsZero() || p.ChangedAt.Unix() <= 0 || p.ChangedAt.UnixNano() <= 0:
		return &FieldError{"changed_at", "must be set to the time of the change"}
	}
	return nil
}

// Get returns workspace's policy in database, or Default(workspace,
// defaultDays) when it has none.
func Get(ctx context.Context, conn Querier, database, workspace string, defaultDays int) (Policy, error) {
	all, err := query(ctx, conn, database, "WHERE workspace_id = ?", workspace)
	if err != nil {
		return Policy{}, err
	}
	if p, ok := all[workspace]; ok {
		return p, nil
	}
	return Default(workspace, defaultDays), nil
}

// All returns every workspace's explicit policy, by workspace.
func All(ctx context.Context, conn Querier, database string) (map[string]Policy, error) {
	return query(ctx, conn, database, "")
}

// Set validates p and appends it as workspace's policy in force, with
// version p.ChangedAt in nanoseconds, or one more than the version in
// force when that is later (a host whose clock is behind): the change
// written last wins. Two Sets of one workspace racing on different hosts
// may still both read the same version; the one with the later clock
// wins. Errors of validation wrap
// ErrInvalid (a *FieldError); nothing is written then.
//
// The insert runs without ctx's cancellation once started, so a
// cancelled request cannot leave a half-sent batch on a pooled
// connection; ctx bounds preparing it.
func Set(ctx context.Context, conn Conn, database string, p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	row := migrations.PolicyRow{
		WorkspaceID: p.Workspace, Days: uint16(p.Days), HoldReason: p.HoldReason, ChangedBy: p.ChangedBy,
		ChangedAt: p.ChangedAt.UTC().Truncate(time.Second), Version: uint64(p.ChangedAt.UnixNano()),
	}
	if p.Hold {
		row.Hold = 1
	}
	// A change written later wins even when this host's clock is behind
	// the one that wrote the policy in force.
	var prev uint64
	err := scanOne(ctx, conn, fmt.Sprintf("SELECT max(version) FROM %s.%s WHERE workspace_id = ?", database, migrations.RetentionTable), p.Workspace, &prev)
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", p.Workspace, err)
	}
	row.Version = max(row.Version, prev+1)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("set retention of %s: %w", p.Workspace, err)
	}
	batch, err := conn.PrepareBatch(context.WithoutCancel(ctx), migrations.Policies.Insert(database))
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", p.Workspace, err)
	}
	if err := batch.Append(migrations.Policies.Values(&row)...); err != nil {
		_ = batch.Abort()
		return fmt.Errorf("set retention of %s: %w", p.Workspace, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("set retention of %s: %w", p.Workspace, err)
	}
	return nil
}

// scanOne runs a query of one row and one column.
func scanOne(ctx context.Context, conn Querier, q string, arg any, dest any) error {
	rows, err := conn.Query(ctx, q, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dest); err != nil {
			return err
		}
	}
	return rows.Err()
}

// query reads the policy in force of the workspaces where says (a WHERE
// clause, "" for all), by workspace.
func query(ctx context.Context, conn Querier, database, where string, args ...any) (map[string]Policy, error) {
	q := fmt.Sprintf(`SELECT workspace_id, argMax(days, version), argMax(hold, version), argMax(hold_reason, version),
argMax(changed_by, version), argMax(changed_at, version) FROM %s.%s %s GROUP BY workspace_id`, database, migrations.RetentionTable, where)
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read retention policies: %w", err)
	}
	defer rows.Close()
	out := map[string]Policy{}
	for rows.Next() {
		var (
			r    migrations.PolicyRow
			p    Policy
			days uint16
		)
		if err := rows.Scan(&p.Workspace, &days, &r.Hold, &p.HoldReason, &p.ChangedBy, &p.ChangedAt); err != nil {
			return nil, fmt.Errorf("read retention policies: %w", err)
		}
		p.Days, p.Hold, p.ChangedAt = int(days), r.Hold != 0, p.ChangedAt.UTC()
		out[p.Workspace] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read retention policies: %w", err)
	}
	return out, nil
}
