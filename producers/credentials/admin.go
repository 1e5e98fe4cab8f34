// Package credentials manages producer credentials on the credentials
// topic: create, list, rotate and revoke. Every change is first published
// as an audit event in the platform trail (workspace
// credential.PlatformWorkspace), then written to the topic, so no change
// is ever left unrecorded (a failed write leaves a recorded attempt, which
// the operator repeats). Secrets are returned once and never stored; the
// events name the credential's id, name and scopes, never a secret or its
// hash.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/credential"
	"github.com/audittrail/audittrail/schemas/event"
)

// Catalogue names of the platform trail's credential events.
const (
	EventCreated = "Producer Credential Created"
	EventRotated = "Producer Credential Rotated"
	EventRevoked = "Producer Credential Revoked"
)

// Table is the credentials topic as the admin needs it (a kvtopic.Table).
type Table interface {
	Put(ctx context.Context, key string, value []byte) error
}

// Emitter publishes an audit event and returns once it is acknowledged.
type Emitter interface {
	Emit(ctx context.Context, ev event.Event) error
}

// ErrNotFound is returned for a credential id the topic does not hold.
var ErrNotFound = errors.New("no such credential")

// ErrRevoked is returned when rotating or revoking a revoked credential.
var ErrRevoked = errors.New("credential is revoked")

// Admin changes credentials. Records reach it through Apply (the table's
// change callback), so it sees what the topic holds. Safe for concurrent
// use.
type Admin struct {
	table  Table
	events Emitter
	now    func() time.Time

	mu      sync.Mutex
	records map[string]credential.Record
}

// New returns an Admin writing to table and publishing to events; now is
// the clock (nil: time.Now).
func New(table Table, events Emitter, now func() time.Time) *Admin {
	if now == nil {
		now = time.Now
	}
	return &Admin{table: table, events: events, now: now, records: map[string]credential.Record{}}
}

// Apply records the topic's value of key (nil: deleted); records that do
// not decode are skipped.
func (a *Admin) Apply(key string, value []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var r credential.Record
	if value == nil || json.Unmarshal(value, &r) != nil {
		delete(a.records, key)
		return
	}
	a.records[key] = r
}

// List returns every credential, revoked ones included, by id.
func (a *Admin) List() []credential.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]credential.Record, 0, len(a.records))
	for _, r := range a.records {
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y credential.Record) int { return strings.Compare(x.ID, y.ID) })
	return out
}

func (a *Admin) get(id string) (credential.Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.records[id]
	if !ok {
		return r, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if r.RevokedAt != nil {
		return r, fmt.Errorf("%s: %w", id, ErrRevoked)
	}
	return r, nil
}

// Create makes a credential and returns it with its token (shown once).
func (a *Admin) Create(ctx context.Context, operator, name string, scopes credential.Scopes) (credential.Record, string, error) {
	secret := credential.NewSecret()
	r := credential.Record{ID: credential.NewID(), Name: strings.TrimSpace(name), Scopes: scopes,
		SecretSHA256: credential.Hash(secret), CreatedAt: a.now().UTC()}
	if err := r.Validate(); err != nil {
		return r, "", err
	}
	changes := map[string]event.Change{"name": newValue(r.Name), "scopes": newValue(r.Scopes)}
	if err := a.change(ctx, operator, EventCreated, r, changes, nil); err != nil {
		return r, "", err
	}
	return r, credential.Token(r.ID, secret), nil
}

// Rotate gives credential id a new secret; the current one stays valid for
// grace. It returns the record and the new token (shown once).
func (a *Admin) Rotate(ctx context.Context, operator, id string, grace time.Duration) (credential.Record, string, error) {
	r, err := a.get(id)
	if err != nil {
		return r, "", err
	}
	secret := credential.NewSecret()
	r.Rotate(secret, a.now(), grace)
	props := map[string]any{"grace": grace.String()}
	if r.PreviousValidUntil != nil {
		props["previous_valid_until"] = r.PreviousValidUntil
	}
	if err := a.change(ctx, operator, EventRotated, r, nil, props); err != nil {
		return r, "", err
	}
	return r, credential.Token(r.ID, secret), nil
}

// Revoke makes credential id open nothing from now on.
func (a *Admin) Revoke(ctx context.Context, operator, id string) (credential.Record, error) {
	r, err := a.get(id)
	if err != nil {
		return r, err
	}
	at := a.now().UTC()
	r.RevokedAt = &at
	changes := map[string]event.Change{"scopes": {Old: mustJSON(r.Scopes)}}
	return r, a.change(ctx, operator, EventRevoked, r, changes, nil)
}

// change publishes the audit event of a change to r, then writes r.
func (a *Admin) change(ctx context.Context, operator, name string, r credential.Record, changes map[string]event.Change, props map[string]any) error {
	if strings.TrimSpace(operator) == "" {
		return errors.New("operator is empty: name who makes the change")
	}
	ev := event.Event{
		WorkspaceID: credential.PlatformWorkspace,
		Event:       name,
		Timestamp:   a.now().UTC(),
		Actor:       event.Actor{Type: event.ActorUser, ID: operator},
		Resource:    event.Resource{Type: "producer_credential", ID: r.ID, Name: r.Name},
		Changes:     changes,
		Context:     event.Context{UserAgent: "audittrail-credentials"},
	}
	if props != nil {
		ev.Properties = mustJSON(props)
	}
	if err := a.events.Emit(ctx, ev); err != nil {
		return fmt.Errorf("record %q for %s (nothing changed): %w", name, r.ID, err)
	}
	value, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode %s: %w", r.ID, err)
	}
	if err := a.table.Put(ctx, r.ID, value); err != nil {
		return fmt.Errorf("write %s (its %q event is recorded; repeat the command): %w", r.ID, name, err)
	}
	a.Apply(r.ID, value)
	return nil
}

func newValue(v any) event.Change { return event.Change{New: mustJSON(v)} }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err)) // only plain values are encoded here
	}
	return b
}
