package retentionpolicy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
)

func TestValidateNamesTheField(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ok := Policy{Workspace: "ws_1", Days: 90, ChangedBy: "ops", ChangedAt: at}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		name  string
		edit  func(p *Policy)
		field string
	}{
		{"empty workspace", func(p *Policy) { p.Workspace = "" }, "workspace_id"},
		{"workspace with a quote", func(p *Policy) { p.Workspace = "ws'; DROP TABLE x" }, "workspace_id"},
		{"workspace too long", func(p *Policy) { p.Workspace = strings.Repeat("a", 129) }, "workspace_id"},
		{"zero days", func(p *Policy) { p.Days = 0 }, "days"},
		{"negative days", func(p *Policy) { p.Days = -5 }, "days"},
		{"days past the maximum", func(p *Policy) { p.Days = MaxDays + 1 }, "days"},
		{"days past UInt16", func(p *Policy) { p.Days = 65536 + 90 }, "days"},
		{"hold without a reason", func(p *Policy) { p.Hold = true }, "hold_reason"},
		{"reason too long", func(p *Policy) { p.Hold, p.HoldReason = true, strings.Repeat("é", MaxHoldReason+1) }, "hold_reason"},
		{"reason not UTF-8", func(p *Policy) { p.HoldReason = "\xff" }, "hold_reason"},
		{"nobody changed it", func(p *Policy) { p.ChangedBy = "" }, "changed_by"},
		{"changer too long", func(p *Policy) { p.ChangedBy = strings.Repeat("a", MaxChangedBy+1) }, "changed_by"},
		{"no time", func(p *Policy) { p.ChangedAt = time.Time{} }, "changed_at"},
		{"time before 1970", func(p *Policy) { p.ChangedAt = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC) }, "changed_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			err := p.Validate()
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			require.Equal(t, tc.field, fe.Field)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
	for _, edit := range []func(p *Policy){
		func(p *Policy) { p.Days = MinDays },
		func(p *Policy) { p.Days = MaxDays },
		func(p *Policy) { p.Hold, p.HoldReason = true, "litigation 2026-17" },
		func(p *Policy) { p.HoldReason = strings.Repeat("é", MaxHoldReason) },
	} {
		p := ok
		edit(&p)
		require.NoError(t, p.Validate())
	}
}

func TestKeepsItsWindowOrEverythingUnderAHold(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p := Policy{Workspace: "ws", Days: 30}
	cutoff := now.Add(-30 * 24 * time.Hour)
	require.Equal(t, cutoff, p.Cutoff(now))
	require.True(t, p.Keeps(cutoff, now), "the window includes its first instant")
	require.False(t, p.Keeps(cutoff.Add(-time.Nanosecond), now))
	require.False(t, p.Outlives(90))
	require.True(t, Policy{Days: 400}.Outlives(90))
	require.False(t, Policy{Days: 90}.Outlives(90))
	held := Policy{Days: 30, Hold: true}
	require.True(t, held.Keeps(now.AddDate(-20, 0, 0), now))
	require.True(t, held.Outlives(90))
	require.Equal(t, Policy{Workspace: "w", Days: 90}, Default("w", 90))
}

// failing is a connection whose every query fails.
type failing struct{}

func (failing) Query(context.Context, string, ...any) (driver.Rows, error) {
	return nil, errors.New("connection refused")
}

func TestCacheWithoutACopyReturnsTheReadError(t *testing.T) {
	c := NewCache(failing{}, "db", 90, time.Minute, nil)
	_, err := c.For(context.Background(), "ws")
	require.ErrorContains(t, err, "connection refused", "no copy to serve: the read fails, never a default window")
	require.Equal(t, 90, c.DefaultDays())
}
