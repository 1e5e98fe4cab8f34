package migrations

import (
	"time"

	"github.com/audittrail/audittrail/schemas/event"
)

// Row is one event flattened into the columns of the events table, in the
// order of InsertColumns.
type Row struct {
	WorkspaceID      string
	Timestamp        time.Time
	TimestampNs      int64
	ID               string
	Event            string
	Category         string
	ActorType        string
	ActorID          string
	ActorName        string
	ActorEmail       string
	ResourceType     string
	ResourceID       string
	ResourceName     string
	Changes          string
	ContextIP        string
	ContextUserAgent string
	ContextRequestID string
	Properties       string
	ReceivedAt       time.Time
	ReceivedAtNs     int64
}

// RowOf flattens a validated event.
func RowOf(e *event.Event) Row {
	changes := "{}"
	if len(e.Changes) > 0 {
		if b, err := event.AppendChanges(nil, e.Changes); err == nil {
			changes = string(b)
		}
	}
	props := "{}"
	if len(e.Properties) > 0 {
		props = string(e.Properties)
	}
	return Row{
		WorkspaceID: e.WorkspaceID, Timestamp: e.Timestamp.Truncate(time.Second), TimestampNs: e.Timestamp.UnixNano(),
		ID: e.ID, Event: e.Event, Category: e.Category,
		ActorType: e.Actor.Type, ActorID: e.Actor.ID, ActorName: e.Actor.Name, ActorEmail: e.Actor.Email,
		ResourceType: e.Resource.Type, ResourceID: e.Resource.ID, ResourceName: e.Resource.Name,
		Changes: changes, ContextIP: e.Context.IP, ContextUserAgent: e.Context.UserAgent, ContextRequestID: e.Context.RequestID,
		Properties: props, ReceivedAt: e.ReceivedAt.Truncate(time.Second), ReceivedAtNs: e.ReceivedAt.UnixNano(),
	}
}

// Values returns the row's values in InsertColumns order.
func (r *Row) Values() []any {
	return []any{
		r.WorkspaceID, r.Timestamp, r.TimestampNs, r.ID, r.Event, r.Category,
		r.ActorType, r.ActorID, r.ActorName, r.ActorEmail,
		r.ResourceType, r.ResourceID, r.ResourceName, r.Changes,
		r.ContextIP, r.ContextUserAgent, r.ContextRequestID, r.Properties,
		r.ReceivedAt, r.ReceivedAtNs,
	}
}
