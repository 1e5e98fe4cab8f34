package migrations

import (
	"time"
	"unsafe"

	"github.com/audittrail/audittrail/schemas/event"
)

// Row is one event flattened into the columns of the events table, in the
// order of InsertColumns.
type Row struct {
	WorkspaceID        string
	Timestamp          time.Time
	TimestampNs        int64
	ID                 string
	Event              string
	Category           string
	ActorType          string
	ActorID            string
	ActorName          string
	ActorEmail         string
	ResourceType       string
	ResourceID         string
	ResourceName       string
	Changes            string
	ContextIP          string
	ContextUserAgent   string
	ContextRequestID   string
	Properties         string
	ReceivedAt         time.Time
	ReceivedAtNs       int64
	SenderCredentialID string
	SenderProducer     string
}

// RowOf flattens a validated event.
func RowOf(e *event.Event) Row {
	return RowWithChanges(e, nil)
}

// RowWithChanges flattens a validated event whose changes are given as
// their JSON, as event.DecodeStored returns them; nil changes are taken
// from e.Changes. Strings share memory with changes and e.Properties.
func RowWithChanges(e *event.Event, changes []byte) Row {
	changesText := "{}"
	switch {
	case len(changes) > 0:
		changesText = unsafe.String(&changes[0], len(changes))
	case len(e.Changes) > 0:
		if b, err := event.AppendChanges(nil, e.Changes); err == nil {
			changesText = unsafe.String(&b[0], len(b))
		}
	}
	props := "{}"
	if len(e.Properties) > 0 {
		props = unsafe.String(&e.Properties[0], len(e.Properties))
	}
	return Row{
		WorkspaceID: e.WorkspaceID, Timestamp: e.Timestamp.Truncate(time.Second), TimestampNs: e.Timestamp.UnixNano(),
		ID: e.ID, Event: e.Event, Category: e.Category,
		ActorType: e.Actor.Type, ActorID: e.Actor.ID, ActorName: e.Actor.Name, ActorEmail: e.Actor.Email,
		ResourceType: e.Resource.Type, ResourceID: e.Resource.ID, ResourceName: e.Resource.Name,
		Changes: changesText, ContextIP: e.Context.IP, ContextUserAgent: e.Context.UserAgent, ContextRequestID: e.Context.RequestID,
		Properties: props, ReceivedAt: e.ReceivedAt.Truncate(time.Second), ReceivedAtNs: e.ReceivedAt.UnixNano(),
		SenderCredentialID: e.Sender.CredentialID, SenderProducer: e.Sender.Producer,
	}
}

// Values returns the row's values in InsertColumns order.
func (r *Row) Values() []any {
	return []any{
		r.WorkspaceID, r.Timestamp, r.TimestampNs, r.ID, r.Event, r.Category,
		r.ActorType, r.ActorID, r.ActorName, r.ActorEmail,
		r.ResourceType, r.ResourceID, r.ResourceName, r.Changes,
		r.ContextIP, r.ContextUserAgent, r.ContextRequestID, r.Properties,
		r.ReceivedAt, r.ReceivedAtNs, r.SenderCredentialID, r.SenderProducer,
	}
}
