package retention

// A legal hold placed while a run is under way stops the run: the policies
// are checked again right before every partition drop and delete of
// events or leaves.

import (
	"context"
	"errors"
	"fmt"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// ErrPoliciesChanged is returned by a run that stopped because a policy
// changed after it read them: nothing more was dropped or deleted with
// the old policies, and the next run starts over with the new ones.
var ErrPoliciesChanged = errors.New("retention policies changed during the run: stopped before dropping or deleting by the old ones")

// policyMark identifies the policies in force: the number of workspaces
// with a policy and the sum of each one's newest version. A change (a row
// with a later version) changes it; merges of the table do not.
type policyMark struct{ workspaces, versions uint64 }

func (e *Enforcer) policyMark(ctx context.Context) (policyMark, error) {
	var m policyMark
	err := e.conn.QueryRow(ctx, fmt.Sprintf("SELECT count(), sum(v) FROM (SELECT max(version) AS v FROM %s.%s GROUP BY workspace_id)",
		e.database, migrations.RetentionTable)).Scan(&m.workspaces, &m.versions)
	if err != nil {
		return m, fmt.Errorf("read the retention policies' versions: %w", err)
	}
	return m, nil
}

// unchanged returns ErrPoliciesChanged when the policies in force are no
// longer those r read (nil r: no check).
func (e *Enforcer) unchanged(ctx context.Context, r *run) error {
	if r == nil {
		return nil
	}
	m, err := e.policyMark(ctx)
	if err != nil {
		return err
	}
	if m != r.mark {
		return ErrPoliciesChanged
	}
	return nil
}
