package retention

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
)

func TestOldLayoutDaysAreKeptForLongerPolicies(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := &run{now: now, defaultDays: 90, policies: map[string]retentionpolicy.Policy{"short": {Workspace: "short", Days: 30}}}
	require.Equal(t, "20260908", r.legacyCutoff("20260908"), "no policy keeps longer: the deployment's cutoff")
	r.policies["long"] = retentionpolicy.Policy{Workspace: "long", Days: 400}
	require.Equal(t, "20251102", r.legacyCutoff("20260908"), "the longest window's cutoff")
	r.policies["held"] = retentionpolicy.Policy{Workspace: "held", Days: 30, Hold: true}
	require.Equal(t, "19700101", r.legacyCutoff("20260908"), "under a hold no old day is dropped")
}
