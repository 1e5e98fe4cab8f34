package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

func record(t *testing.T, ws, kind, settings string) []byte {
	b, err := json.Marshal(trackingplan.Record{WorkspaceID: ws, Kind: kind, Settings: json.RawMessage(settings)})
	require.NoError(t, err)
	return b
}

func TestWorkspacesCompileRecordsAndFallBackToDefaults(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := NewWorkspaces(slog.New(slog.DiscardHandler))
	defer w.Close()
	w.Apply(trackingplan.Key("ws_1", trackingplan.KindForwarding), record(t, "ws_1", trackingplan.KindForwarding,
		`{"enabled": true, "target": {"url": "https://x.example.com", "write_key": "k"}}`))
	w.Apply(trackingplan.Key("ws_1", trackingplan.KindFilters), record(t, "ws_1", trackingplan.KindFilters,
		`{"filters": [{"name": "a", "enabled": true, "if": "event == 'X'", "action": "drop"}]}`))
	require.NoError(t, w.WaitIdle(context.Background()))
	ws := w.Get("ws_1")
	require.True(t, ws.Forwarding.Enabled)
	require.NotNil(t, ws.Filters)

	// A record that does not compile resets its kind to the default,
	// leaving the other kinds as they were.
	w.Apply(trackingplan.Key("ws_1", trackingplan.KindFilters), record(t, "ws_1", trackingplan.KindFilters,
		`{"filters": [{"name": "a", "enabled": true, "if": "event ==", "action": "drop"}]}`))
	require.NoError(t, w.WaitIdle(context.Background()))
	require.Nil(t, w.Get("ws_1").Filters)
	require.True(t, w.Get("ws_1").Forwarding.Enabled)
	require.NotNil(t, ws.Filters, "snapshots are immutable")

	// Deleted: forwarding off.
	w.Apply(trackingplan.Key("ws_1", trackingplan.KindForwarding), nil)
	require.False(t, w.Get("ws_1").Forwarding.Enabled)
	w.Apply("no-kind", []byte(`{}`))
	require.Nil(t, w.Get("no-kind"))
}

func TestAlertTextSaysWhoWhatWhichWhen(t *testing.T) {
	ev := mkEvent("ws_1", 0, "Warehouses Disabled", "")
	ev.Resource = event.Resource{Type: "warehouse", ID: "wh_1", Name: "Snowflake prod"}
	require.Equal(t, "*Warehouses Disabled* in workspace ws_1\n"+
		"By: Alice <alice@example.com> (user usr_1)\n"+
		"Resource: warehouse \"Snowflake prod\" (wh_1)\n"+
		"When: 2026-11-25 10:00:00 UTC\n"+
		"Changes:\n- enabled: true → false", AlertText(&ev))
}

// A slow compilation runs off the caller's goroutine and holds only its
// own workspace: Apply returns at once, the other workspaces' records
// apply meanwhile, the previous plan stays in use until the new one is
// compiled, and a newer record replaces a queued one.
func TestSlowCompileHoldsOnlyItsWorkspace(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := NewWorkspaces(slog.New(slog.DiscardHandler))
	defer w.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	var compiled []string
	w.compile = func(id, kind string, raw json.RawMessage) (any, error) {
		if id == "ws_a" && strings.Contains(string(raw), `"B"`) {
			close(entered)
			<-release
		}
		if id == "ws_a" {
			compiled = append(compiled, string(raw))
		}
		return compileSettings(id, kind, raw)
	}
	plan := func(ws, p string) {
		w.Apply(trackingplan.Key(ws, trackingplan.KindPlan), record(t, ws, trackingplan.KindPlan, p))
	}
	plan("ws_a", `{"events": {"A": {}}, "unplanned_events": "block"}`)
	require.NoError(t, w.WaitIdle(context.Background()))
	old := w.Get("ws_a").Plan
	require.NotNil(t, old)

	plan("ws_a", `{"events": {"B": {}}, "unplanned_events": "block"}`)
	<-entered
	plan("ws_a", `{"events": {"C": {}}, "unplanned_events": "block"}`)
	plan("ws_a", `{"events": {"D": {}}, "unplanned_events": "block"}`) // replaces C, still queued
	plan("ws_b", `{"events": {"X": {}}, "unplanned_events": "block"}`)
	w.Apply(trackingplan.Key("ws_b", trackingplan.KindForwarding), record(t, "ws_b", trackingplan.KindForwarding,
		`{"enabled": true, "target": {"url": "https://x.example.com", "write_key": "k"}}`))
	require.Eventually(t, func() bool { return w.Get("ws_b").Plan != nil }, 10*time.Second, time.Millisecond,
		"ws_b compiled while ws_a's compilation is held")
	require.True(t, w.Get("ws_b").Forwarding.Enabled)
	require.Same(t, old, w.Get("ws_a").Plan, "the previous plan stays in use")
	require.True(t, w.Get("ws_a").Ready(), "ws_a had a plan: its events need not wait")

	close(release)
	require.NoError(t, w.WaitIdle(context.Background()))
	require.True(t, w.Get("ws_a").Plan.Check("C", nil).Drop, "C was replaced before it was compiled")
	require.False(t, w.Get("ws_a").Plan.Check("D", nil).Drop)
	require.Len(t, compiled, 3, "A, B and D compiled; C never: %q", compiled)
}

func TestAWorkspaceWaitsForTheFirstCompilationOfItsSettings(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := NewWorkspaces(slog.New(slog.DiscardHandler))
	defer w.Close()
	release := make(chan struct{})
	w.compile = func(id, kind string, raw json.RawMessage) (any, error) {
		<-release
		return compileSettings(id, kind, raw)
	}
	w.Apply(trackingplan.Key("ws_a", trackingplan.KindFilters), record(t, "ws_a", trackingplan.KindFilters,
		`{"filters": [{"name": "a", "enabled": true, "if": "event == 'X'", "action": "drop"}]}`))
	require.False(t, w.Get("ws_a").Ready(), "no filters compiled yet: nothing to apply in their place")
	close(release)
	require.NoError(t, w.WaitIdle(context.Background()))
	require.True(t, w.Get("ws_a").Ready())
	require.NotNil(t, w.Get("ws_a").Filters)
}

func TestAlertTextOfFailures(t *testing.T) {
	tests := []struct {
		name, props string
		want        []string
		not         []string
	}{
		{"numbers", `{"attempt": 3, "max_attempts": 5, "error": "connection reset by peer"}`,
			[]string{"\nAttempt: 3 of 5", "\nError: connection reset by peer"}, nil},
		{"numeric strings", `{"attempt": "3", "max_attempts": " 5 ", "error": "timeout"}`,
			[]string{"\nAttempt: 3 of 5", "\nError: timeout"}, nil},
		{"attempt only", `{"attempt": 2}`, []string{"\nAttempt: 2"}, []string{" of "}},
		{"not numbers", `{"attempt": "three", "max_attempts": "0x5"}`, nil, []string{"Attempt:"}},
		{"nothing", ``, nil, []string{"Attempt:", "Error:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mkEvent("ws_1", 0, "Audience Run Failed", tt.props)
			text := AlertText(&ev)
			for _, s := range tt.want {
				require.Contains(t, text, s)
			}
			for _, s := range tt.not {
				require.NotContains(t, text, s)
			}
		})
	}
}

func TestFinalFailureReadsNumericStrings(t *testing.T) {
	tests := []struct {
		props map[string]any
		want  bool
	}{
		{map[string]any{"attempt": json.Number("3"), "max_attempts": json.Number("5")}, false},
		{map[string]any{"attempt": "3", "max_attempts": "5"}, false},
		{map[string]any{"attempt": "5", "max_attempts": json.Number("5")}, true},
		{map[string]any{"attempt": "10", "max_attempts": "9"}, true}, // compared as numbers, not as strings
		{map[string]any{"attempt": "2", "max_attempts": "10"}, false},
		{map[string]any{"attempt": "x", "max_attempts": "10"}, true}, // does not say: passes
		{map[string]any{"attempt": "null", "max_attempts": "10"}, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, trackingplan.FinalFailure("Audience Run Failed", tt.props), "%v", tt.props)
	}
}

// Event properties never pose as audit fields in the forwarded call: the
// audit values win, and the event's own properties of those names are
// forwarded under overridden_properties.
func TestPropertiesCannotPoseAsAuditFields(t *testing.T) {
	tests := []struct {
		name    string
		changes bool
		props   string
		want    map[string]any
		moved   map[string]any
	}{
		{name: "changes property without audit changes", props: `{"changes": {"role": {"old": "viewer", "new": "admin"}}, "kind": "x"}`,
			want:  map[string]any{"kind": "x"},
			moved: map[string]any{"changes": map[string]any{"role": map[string]any{"old": "viewer", "new": "admin"}}}},
		{name: "changes property with audit changes", changes: true, props: `{"changes": "forged"}`,
			want:  map[string]any{"changes": map[string]any{"enabled": map[string]any{"old": true, "new": false}}},
			moved: map[string]any{"changes": "forged"}},
		{name: "actor and resource fields empty in the event", props: `{"actor_name": "Mallory", "resource_name": "x", "workspace_id": "ws_other", "overridden_properties": 1}`,
			want:  map[string]any{"workspace_id": "ws_1"},
			moved: map[string]any{"actor_name": "Mallory", "resource_name": "x", "workspace_id": "ws_other", "overridden_properties": json.Number("1")}},
		{name: "no collision", changes: true, props: `{"kind": "x"}`, want: map[string]any{"kind": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mkEvent("ws_1", 0, "Source Created", tt.props)
			ev.Actor.Name, ev.Resource.Name = "", ""
			if !tt.changes {
				ev.Changes = nil
			}
			out, err := Process(&Workspace{ID: "ws_1"}, &ev)
			require.NoError(t, err)
			var c TrackCall
			dec := json.NewDecoder(bytes.NewReader(out.Call))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&c))
			for k, v := range tt.want {
				require.Equal(t, v, c.Properties[k], k)
			}
			if !tt.changes {
				require.NotContains(t, c.Properties, "changes", "no audit changes: none forwarded")
			}
			require.NotContains(t, c.Properties, "actor_name")
			require.NotContains(t, c.Properties, "resource_name")
			if tt.moved == nil {
				require.NotContains(t, c.Properties, overriddenProperties)
			} else {
				require.Equal(t, tt.moved, c.Properties[overriddenProperties])
			}
		})
	}
}
