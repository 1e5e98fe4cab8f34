package api

import (
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/openapi"
)

// TestOpenAPIDescribesTheServedEvent fails when the Event schema of the
// OpenAPI document and the JSON the API serves for a full event disagree
// on the fields (sender and restored included), or the documented CSV columns are not
// CSVColumns.
func TestOpenAPIDescribesTheServedEvent(t *testing.T) {
	type schema struct {
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	raw := openapi.Document()
	require.NoError(t, json.Unmarshal(raw, &doc))

	ts := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	full := event.Event{ID: "e", WorkspaceID: "w", Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
		Actor: event.Actor{Type: "user", ID: "u"}, Changes: map[string]event.Change{"a": {New: []byte("1")}},
		Sender: event.Sender{CredentialID: "legacy-0123456789ab", Producer: "billing"}, Properties: []byte(`{}`), Restored: true}
	b, err := event.Marshal(&full)
	require.NoError(t, err)
	var served map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &served))
	ev := doc.Components.Schemas["Event"]
	require.ElementsMatch(t, keys(served), keys(ev.Properties))
	require.Contains(t, ev.Required, "sender", "every served event has a sender object")
	require.NotContains(t, ev.Required, "restored", "only restored events carry restored")
	var sender map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(served["sender"], &sender))
	require.ElementsMatch(t, keys(sender), keys(doc.Components.Schemas["Sender"].Properties))

	require.Contains(t, string(raw), "Columns: "+strings.Join(CSVColumns, ",")+".")
}

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
