package retention

// Deletes queued before a hold or a longer window: the admin API copies
// the workspace's rows they would delete when the change is made
// (retentionpolicy.Protect); each run does it again for every workspace
// whose policy changed since the oldest unfinished mutation was issued,
// so a copy that failed, that the API never made (it stopped first), or
// that ran before a delete became visible (ON CLUSTER deletes reach the
// nodes later) is made within a run. A workspace is copied again only
// when the unfinished mutations changed since its last copy.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
)

// protectChanged runs retentionpolicy.Protect for the workspaces whose
// policy changed since the oldest unfinished mutation (an hour earlier,
// for the clocks' skew). Failures are logged: the run goes on.
func (e *Enforcer) protectChanged(ctx context.Context, r *run) {
	pending, err := retentionpolicy.Unfinished(ctx, e.conn, e.schema)
	if err != nil || len(pending) == 0 {
		if err != nil {
			e.log.Warn("retention could not look up unfinished deletes to protect changed policies", "err", err)
		}
		return
	}
	var sig []string
	oldest := r.now
	for table, at := range pending {
		sig = append(sig, fmt.Sprintf("%s@%d", table, at.Unix()))
		if at.Before(oldest) {
			oldest = at
		}
	}
	slices.Sort(sig)
	mark := strings.Join(sig, ",")
	e.protectMu.Lock()
	defer e.protectMu.Unlock()
	for _, ws := range sortedKeys(r.policies) {
		p := r.policies[ws]
		if p.ChangedAt.Before(oldest.Add(-time.Hour)) || e.protected[ws] == mark {
			continue
		}
		tables, err := retentionpolicy.Protect(ctx, e.conn, e.schema, ws, e.days, r.now)
		if err != nil {
			e.log.Warn("retention could not protect a workspace from deletes queued before its policy changed", "workspace", ws, "err", err)
			continue
		}
		e.protected[ws] = mark
		if len(tables) > 0 {
			e.log.Info("kept a workspace's rows from deletes queued before its policy changed", "workspace", ws, "tables", tables)
		}
	}
}
