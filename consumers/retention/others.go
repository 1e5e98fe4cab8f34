package retention

// The workspaces without a policy of their own. Their delete conditions
// name every workspace with a policy (NOT IN), which with thousands of
// policies would pass ClickHouse's max_query_size (256 KiB by default)
// in one statement; and a subquery on audit_retention is not allowed in
// mutations of replicated tables on current servers. So the workspace
// ids are split into ranges, each holding at most othersChunk of the
// named ones, with a condition each; the ranges cover every id once
// (string order is bytewise both in Go and in ClickHouse).

import (
	"slices"
	"strings"
)

// othersChunk is how many workspace ids one condition of the workspaces
// without a policy names; statementNames how many ids one statement
// names at most (chunkExpiries).
const (
	othersChunk    = 500
	statementNames = copyChunk
)

// others returns the conditions selecting the rows of the workspaces
// without a policy, but those in exclude, that tail selects: each is
// "(" + a range's condition + tail, with tailArgs after the range's.
func (r *run) others(exclude map[string]bool, tail string, tailArgs ...any) []expiry {
	named := sortedKeys(r.policies)
	for x := range exclude {
		if _, ok := r.policies[x]; !ok {
			named = append(named, x)
		}
	}
	slices.Sort(named)
	var out []expiry
	for _, rg := range idRanges(named, othersChunk) {
		out = append(out, expiry{cond: "(" + rg.cond + tail, args: append(rg.args, tailArgs...), names: len(rg.args)})
	}
	return out
}

// idRange is a condition on workspace_id and its args.
type idRange struct {
	cond string
	args []any
}

// idRanges splits the workspace ids into ranges, each excluding at most
// per of sorted (sorted, distinct): ranges [sorted[k*per], sorted[(k+1)*per])
// with the first open below and the last open above. With none, one
// range of every id.
func idRanges(sorted []string, per int) []idRange {
	if len(sorted) == 0 {
		return []idRange{{cond: "1"}}
	}
	var out []idRange
	for lo := 0; lo < len(sorted); lo += per {
		hi := min(lo+per, len(sorted))
		group := sorted[lo:hi]
		var conds []string
		var args []any
		if lo > 0 {
			conds, args = append(conds, "workspace_id >= ?"), append(args, group[0])
		}
		if hi < len(sorted) {
			conds, args = append(conds, "workspace_id < ?"), append(args, sorted[hi])
		}
		conds = append(conds, "workspace_id NOT IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(group)), ", ")+")")
		out = append(out, idRange{cond: strings.Join(conds, " AND "), args: append(args, anys(group)...)})
	}
	return out
}

// chunkExpiries groups xs, in order, into statements naming at most
// statementNames workspace ids each (an expiry naming more stands alone).
func chunkExpiries(xs []expiry) [][]expiry {
	var out [][]expiry
	start, names := 0, 0
	for i, x := range xs {
		n := max(x.names, 1)
		if i > start && names+n > statementNames {
			out = append(out, xs[start:i])
			start, names = i, 0
		}
		names += n
	}
	if start < len(xs) {
		out = append(out, xs[start:])
	}
	return out
}
