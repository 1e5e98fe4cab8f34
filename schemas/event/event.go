// Package event is the audit event contract.
//
// It holds the Go types, the JSON codec
// (github.com/segmentio/encoding/json), validation against the event
// catalogue with field-level errors, and the published JSON Schema document
// (event.schema.json, served by Schema).
//
// An event travels as JSON from the producer through Kafka to ClickHouse and
// out of the read API in the same shape; only the ingest path sets ID (when
// absent), Category, ReceivedAt and Sender.CredentialID, and the emitter
// sets Sender.Producer.
package event

import (
	_ "embed"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/encoding/json"
)

// SchemaVersion is the version of this contract, sent in the
// schema_version record header.
const SchemaVersion = "1"

// Actor types.
const (
	ActorUser        = "user"
	ActorAccessToken = "access_token"
	ActorSystem      = "system"
)

// Event is one audit event. The zero value is not valid; use Decode or fill
// the fields and call Policy.Validate.
type Event struct {
	// ID is the idempotency key: the same ID sent twice for one workspace is
	// one event. Assigned by the ingest path when the producer sends none.
	ID          string `json:"id"`
	WorkspaceID string `json:"workspace_id"`
	// Event is the event name, e.g. "Source Created".
	Event string `json:"event"`
	// Category is the product area, derived from the catalogue.
	Category string `json:"category"`
	// Timestamp is when the change happened.
	Timestamp time.Time `json:"timestamp"`
	// ReceivedAt is when the ingest path accepted the event.
	ReceivedAt time.Time         `json:"received_at"`
	Actor      Actor             `json:"actor"`
	Resource   Resource          `json:"resource"`
	Changes    map[string]Change `json:"changes,omitempty"`
	Context    Context           `json:"context"`
	// Sender is who put the event on the trail: set by the ingest gateway
	// and the emitter, not by the code that describes the change.
	Sender Sender `json:"sender"`
	// Properties is a free-form JSON object (nil when absent).
	Properties json.RawMessage `json:"properties,omitempty"`
	// Restored is set by the read API on an event restored from an
	// archive after it expired (docs/retention.md). Producers cannot set
	// it: the decoder rejects the field as unknown.
	Restored bool `json:"restored,omitempty"`
}

// Actor is who made the change: a logged-in user, an access token, or the
// platform itself.
type Actor struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Resource is what was changed.
type Resource struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Change is the before and after value of one field; either may be absent
// (nil) for fields that were created or removed.
type Change struct {
	Old json.RawMessage `json:"old,omitempty"`
	New json.RawMessage `json:"new,omitempty"`
}

// Context is where the change came from.
type Context struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Sender is who sent an event to the trail (as opposed to Actor, who made
// the change). CredentialID is the ingest credential the gateway
// authenticated the request with; producers cannot set it (the gateway
// refuses a request that carries it). Producer is the sending service's
// name: the emitter's configured Config.Producer, or what a producer sent
// the gateway, which is a self-declared label, not proof. An event the
// emitter wrote to Kafka directly has no CredentialID: Kafka's ACLs
// authenticated it.
type Sender struct {
	CredentialID string `json:"credential_id,omitempty"`
	Producer     string `json:"producer,omitempty"`
}

// NewID returns a fresh event ID: a version 7 UUID, so IDs assigned by the
// ingest path sort by time.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does.
		return uuid.NewString()
	}
	return id.String()
}

//go:embed event.schema.json
var schemaDoc []byte

// Schema returns the published JSON Schema document of an event (draft
// 2020-12). The returned slice must not be modified.
func Schema() []byte { return schemaDoc }
