package forward

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

func record(t *testing.T, ws, kind, settings string) []byte {
	b, err := json.Marshal(trackingplan.Record{WorkspaceID: ws, Kind: kind, Settings: json.RawMessage(settings)})
	require.NoError(t, err)
	return b
}

func TestWorkspacesCompileRecordsAndFallBackToDefaults(t *testing.T) {
	w := NewWorkspaces(slog.New(slog.DiscardHandler))
	w.Apply(trackingplan.Key("ws_1", trackingplan.KindForwarding), record(t, "ws_1", trackingplan.KindForwarding,
		`{"enabled": true, "target": {"url": "https://x.example.com", "write_key": "k"}}`))
	w.Apply(trackingplan.Key("ws_1", trackingplan.KindFilters), record(t, "ws_1", trackingplan.KindFilters,
		`{"filters": [{"name": "a", "enabled": true, "if": "event == 'X'", "action": "drop"}]}`))
	ws := w.Get("ws_1")
	require.True(t, ws.Forwarding.Enabled)
	require.NotNil(t, ws.Filters)

	// A record that does not compile resets its kind to the default,
	// leaving the other kinds as they were.
	w.Apply(trackingplan.Key("ws_1", trackingplan.KindFilters), record(t, "ws_1", trackingplan.KindFilters,
		`{"filters": [{"name": "a", "enabled": true, "if": "event ==", "action": "drop"}]}`))
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
