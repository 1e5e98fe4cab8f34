package writer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/retentionpolicy"
)

// fakePolicies serves fixed policies; a workspace named "broken" fails.
type fakePolicies map[string]retentionpolicy.Policy

func (f fakePolicies) For(_ context.Context, ws string) (retentionpolicy.Policy, error) {
	if ws == "broken" {
		return retentionpolicy.Policy{}, errors.New("clickhouse unreachable")
	}
	if p, ok := f[ws]; ok {
		return p, nil
	}
	return retentionpolicy.Default(ws, 90), nil
}

func TestTheArrivalCheckFollowsTheWorkspacesPolicy(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	policies := fakePolicies{
		"ws_hold": {Workspace: "ws_hold", Days: 30, Hold: true},
		"ws_400":  {Workspace: "ws_400", Days: 400},
		"ws_30":   {Workspace: "ws_30", Days: 30},
	}
	for _, tc := range []struct {
		name     string
		policies Policies
		ws       string
		age      time.Duration
		keep     bool
	}{
		{"without policies the deployment's window decides (toRow)", nil, "ws_hold", 200 * day, false},
		{"a hold keeps everything", policies, "ws_hold", 3000 * day, true},
		{"a longer window keeps inside it", policies, "ws_400", 200 * day, true},
		{"a longer window skips past it", policies, "ws_400", 401 * day, false},
		{"a shorter window past the deployment's window", policies, "ws_30", 100 * day, false},
		{"a shorter window past its own but inside the deployment's window: stored, archived before its delete", policies, "ws_30", 40 * day, true},
		{"no policy: the deployment's window", policies, "ws_other", 91 * day, false},
		{"no policy, inside the deployment's window", policies, "ws_other", 89 * day, true},
		{"unreadable policies keep the event for the job to judge", policies, "broken", 3000 * day, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &Writer{log: slog.New(slog.NewTextHandler(io.Discard, nil)), cfg: Config{RetentionDays: 90}}
			w.KeepBy(tc.policies)
			require.Equal(t, tc.keep, w.storesOnArrival(context.Background(), tc.ws, now.Add(-tc.age), now))
		})
	}
}
