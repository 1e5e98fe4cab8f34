package store

import (
	"strings"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/jsonlimit"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// toEvent turns a stored row back into the contract's event. Every row
// is served, whatever wrote it (rows stored before the contract's bounds,
// or by another tool): changes and properties that are not JSON within the
// bounds of jsonlimit are passed through as a JSON string holding the
// stored text (invalid UTF-8 replaced by U+FFFD), and changes that are not
// an object of {"old", "new"} objects are returned under the empty field
// name, which no valid event uses: {"": {"new": <the stored changes>}}.
func toEvent(r *migrations.Row) event.Event {
	e := event.Event{
		ID: r.ID, WorkspaceID: r.WorkspaceID, Event: r.Event, Category: r.Category,
		Timestamp: r.Timestamp, ReceivedAt: r.ReceivedAt,
		Actor:    event.Actor{Type: r.ActorType, ID: r.ActorID, Name: r.ActorName, Email: r.ActorEmail},
		Resource: event.Resource{Type: r.ResourceType, ID: r.ResourceID, Name: r.ResourceName},
		Context:  event.Context{IP: r.ContextIP, UserAgent: r.ContextUserAgent, RequestID: r.ContextRequestID},
		Sender:   event.Sender{CredentialID: r.SenderCredentialID, Producer: r.SenderProducer},
	}
	if r.Changes != "" && r.Changes != "{}" {
		e.Changes = storedChanges(r.Changes)
	}
	if r.Properties != "" && r.Properties != "{}" {
		e.Properties = storedJSON(r.Properties, 1)
	}
	return e
}

// storedChanges reads the changes column: an object of {"old", "new"}
// objects within the bounds, or else the stored text under "".
func storedChanges(s string) map[string]event.Change {
	var changes map[string]event.Change
	if jsonlimit.Valid([]byte(s), 1) {
		if _, err := json.Parse([]byte(s), &changes, json.DisallowUnknownFields); err == nil && changes != nil {
			return changes
		}
	}
	return map[string]event.Change{"": {New: storedJSON(s, 1)}}
}

// storedJSON returns s as raw JSON when it is JSON within the bounds of
// jsonlimit at depth (the containers around it), else as a JSON string of
// its text.
func storedJSON(s string, depth int) json.RawMessage {
	if jsonlimit.Valid([]byte(s), depth) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(strings.ToValidUTF8(s, "\uFFFD"))
	return b
}
