package loadgen

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
)

func TestGeneratedEventsAreValidAndSkewed(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	g, err := New(Config{Workspaces: 100, ZipfS: 1.2, DemoWorkspace: "ws_demo", Spread: 48 * time.Hour, Seed: 7}, func() time.Time { return now })
	require.NoError(t, err)
	perWS := map[string]int{}
	actors := map[string]int{}
	ids := map[string]bool{}
	withChanges := 0
	for range 20000 {
		e := g.Next()
		require.NoError(t, event.Policy{Now: func() time.Time { return now }}.Validate(&e), "%+v", e)
		b, err := event.Marshal(&e)
		require.NoError(t, err)
		_, err = event.Decode(b)
		require.NoError(t, err)
		require.False(t, ids[e.ID])
		ids[e.ID] = true
		perWS[e.WorkspaceID]++
		actors[e.Actor.Type]++
		if len(e.Changes) > 0 {
			withChanges++
		}
		require.False(t, e.Timestamp.After(now))
		require.True(t, e.Timestamp.After(now.Add(-48*time.Hour)))
	}
	require.Greater(t, perWS["ws_demo"], 20000/10, "the demo workspace is the busiest")
	require.Greater(t, len(perWS), 50, "many workspaces send")
	require.Greater(t, actors[event.ActorUser], actors[event.ActorAccessToken])
	require.Positive(t, actors[event.ActorAccessToken])
	require.Positive(t, actors[event.ActorSystem])
	require.Greater(t, withChanges, 20000/2)
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{Workspaces: 0, ZipfS: 1.2}, nil)
	require.ErrorContains(t, err, "workspaces")
	_, err = New(Config{Workspaces: 5, ZipfS: 1}, nil)
	require.ErrorContains(t, err, "zipf")
}
