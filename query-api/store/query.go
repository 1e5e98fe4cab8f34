package store

// Building the SELECTs the store runs: bounds, filters and search.

import (
	"math"
	"slices"
	"strings"

	"github.com/audittrail/audittrail/query-api/search"
)

// query is a SELECT under construction: PREWHERE holds the workspace and
// time bounds (read first, and used for partition and index pruning), WHERE
// the other filters.
type query struct {
	prewhere, where []string
	preArgs, args   []any
}

func (q *query) pre(cond string, args ...any) {
	q.prewhere = append(q.prewhere, cond)
	q.preArgs = append(q.preArgs, args...)
}

func (q *query) and(cond string, args ...any) {
	q.where = append(q.where, cond)
	q.args = append(q.args, args...)
}

// clauses returns "PREWHERE ... [WHERE ...]" and the arguments in order.
func (q *query) clauses() (string, []any) {
	s := "PREWHERE " + strings.Join(q.prewhere, " AND ")
	if len(q.where) > 0 {
		s += "\nWHERE " + strings.Join(q.where, " AND ")
	}
	return s, append(slices.Clip(q.preArgs), q.args...)
}

// bounds adds the workspace and [sp.lo, sp.hi): timestamp (seconds) prunes
// day partitions, timestamp_ns is exact and narrows the primary key range.
func (q *query) bounds(workspaceID string, sp span) {
	q.pre("workspace_id = ?", workspaceID)
	q.pre("timestamp >= toDateTime(?)", max(sp.lo/1e9, 0))
	q.pre("timestamp_ns >= ?", sp.lo)
	if sp.hi != math.MaxInt64 {
		q.pre("timestamp_ns < ?", sp.hi)
		if sec := sp.hi / 1e9; sec <= math.MaxUint32 { // DateTime is 32-bit
			q.pre("timestamp <= toDateTime(?)", max(sec, 0))
		}
	}
}

// filters adds every filter of f but the workspace and time.
func (q *query) filters(f Filter) {
	if len(f.Events) > 0 {
		q.and("event IN ("+placeholders(len(f.Events))+")", anys(f.Events)...)
	}
	for _, eq := range []struct{ col, v string }{
		{"category", f.Category}, {"actor_type", f.ActorType}, {"actor_id", f.ActorID},
		{"resource_type", f.ResourceType}, {"resource_id", f.ResourceID},
	} {
		if eq.v != "" {
			q.and(eq.col+" = ?", eq.v)
		}
	}
	for _, c := range f.Search {
		q.search(c)
	}
}

// searchColumns are the columns each search field looks at.
var searchColumns = map[search.Field][]string{
	search.Text:         {"event", "actor_id", "actor_name", "actor_email", "resource_id", "resource_name"},
	search.Actor:        {"actor_id", "actor_name", "actor_email"},
	search.Resource:     {"resource_id", "resource_name"},
	search.Event:        {"event"},
	search.Category:     {"category"},
	search.ActorType:    {"actor_type"},
	search.ResourceType: {"resource_type"},
}

// search adds one search clause. Text is matched without case by
// positionCaseInsensitiveUTF8, which has no wildcards (so % _ \ and quotes
// in a value are literal); exact fields compare lowerUTF8 of both sides.
func (q *query) search(c search.Clause) {
	var ors []string
	var args []any
	for _, v := range c.Values {
		for _, col := range searchColumns[c.Field] {
			if c.Field.Exact() {
				ors = append(ors, "lowerUTF8("+col+") = lowerUTF8(?)")
			} else {
				ors = append(ors, "positionCaseInsensitiveUTF8("+col+", ?) > 0")
			}
			args = append(args, v)
		}
	}
	cond := "(" + strings.Join(ors, " OR ") + ")"
	if c.Negate {
		cond = "NOT " + cond
	}
	q.and(cond, args...)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}
