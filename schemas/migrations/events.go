package migrations

// The events table: one row per stored event version.

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/audittrail/audittrail/schemas/event"
)

// Table is the name of the audit events table.
const Table = "audit_events"

// Events declares the events table. Rows stored before migration 3 read
// the sender columns as empty strings.
var Events = newTable(Table,
	column("workspace_id", "String", func(r *Row) *string { return &r.WorkspaceID }),
	column("timestamp", "DateTime('UTC')", func(r *Row) *time.Time { return &r.Timestamp }),
	column("timestamp_ns", "Int64", func(r *Row) *int64 { return &r.TimestampNs }),
	column("id", "String", func(r *Row) *string { return &r.ID }),
	column("event", "String", func(r *Row) *string { return &r.Event }),
	column("category", "String", func(r *Row) *string { return &r.Category }),
	column("actor_type", "String", func(r *Row) *string { return &r.ActorType }),
	column("actor_id", "String", func(r *Row) *string { return &r.ActorID }),
	column("actor_name", "String", func(r *Row) *string { return &r.ActorName }),
	column("actor_email", "String", func(r *Row) *string { return &r.ActorEmail }),
	column("resource_type", "String", func(r *Row) *string { return &r.ResourceType }),
	column("resource_id", "String", func(r *Row) *string { return &r.ResourceID }),
	column("resource_name", "String", func(r *Row) *string { return &r.ResourceName }),
	column("changes", "String", func(r *Row) *string { return &r.Changes }),
	column("context_ip", "String", func(r *Row) *string { return &r.ContextIP }),
	column("context_user_agent", "String", func(r *Row) *string { return &r.ContextUserAgent }),
	column("context_request_id", "String", func(r *Row) *string { return &r.ContextRequestID }),
	column("properties", "String", func(r *Row) *string { return &r.Properties }),
	column("received_at", "DateTime('UTC')", func(r *Row) *time.Time { return &r.ReceivedAt }),
	column("received_at_ns", "Int64", func(r *Row) *int64 { return &r.ReceivedAtNs }),
	defaulted[Row]("inserted_at", "DateTime('UTC')", "now()"),
	column("sender_credential_id", "String", func(r *Row) *string { return &r.SenderCredentialID }).withDefault("''"),
	column("sender_producer", "String", func(r *Row) *string { return &r.SenderProducer }).withDefault("''"),
)

// InsertColumns are the columns a writer names in its INSERT into the
// events table, in the order of the values it appends
// (Events.InsertColumns).
var InsertColumns = Events.InsertColumns()

// Row is one event flattened into the columns of the events table (see
// Events).
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
func (r *Row) Values() []any { return Events.Values(r) }

// senderColumns record who sent each event (event.Sender): the ingest
// credential the gateway authenticated and the producer's name. Migration
// 3 adds them to tables created before it.
var senderColumns = Events.added("sender_credential_id", "sender_producer")

// createEvents creates the events table.
//
// Layout: one row per event version; the sorting key (workspace_id,
// timestamp_ns, id) serves the reads users make (one workspace, newest first,
// a time range) and makes replays of the same event collapse: a
// ReplacingMergeTree keeps one row per key after merges, and the read path
// hides not-yet-merged copies with LIMIT 1 BY. Day partitions make retention
// a cheap partition drop. timestamp is second precision (DateTime64 does not
// exist on 18.16); timestamp_ns keeps the exact time for ordering.
func createEvents(o Options, v Version) []string {
	ttl := ""
	if v.SupportsTTL() {
		ttl = "\n" + retentionTTL(o.RetentionDays)
	}
	return o.createTable(Table, Events.definition(), "ReplacingMergeTree()", `PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (workspace_id, timestamp_ns, id)`+ttl+`
SETTINGS index_granularity = 8192`)
}

// retentionTTL is the events table's TTL clause for a retention window, as
// the server prints it in system.tables.engine_full.
func retentionTTL(days int) string {
	return fmt.Sprintf("TTL timestamp + toIntervalDay(%d)", days)
}
