package admin

// The audit events of an operator's change. Each change is recorded
// twice, before it takes effect:
//
//   - in the workspace's own trail, which its owners read: what changed
//     and when, by "Operator" (actor type system), without the operator's
//     name, address or user agent, and without the reason unless the
//     operator shares it (share_reason): a hold's case details stay the
//     operator's;
//   - in the platform trail (credential.PlatformWorkspace, where the
//     operators' other changes are recorded): the same event with the
//     workspace, the operator's name as the actor, the reason and the
//     request's address and user agent.

import (
	"context"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/credential"
	"github.com/audittrail/audittrail/schemas/event"
)

// Catalogue names of the operators' events.
const (
	EventRetentionChanged = "Audit Retention Changed"
	EventHoldPlaced       = "Audit Legal Hold Placed"
	EventHoldReleased     = "Audit Legal Hold Released"
	EventArchiveRestored  = "Audit Archive Restored"
)

// OperatorActor is the actor of an operator's change in the workspace's
// own trail.
var OperatorActor = event.Actor{Type: event.ActorSystem, ID: "operator", Name: "Operator"}

// userAgentLen and requestIDLen bound the request's context in an event.
const (
	userAgentLen = 512
	requestIDLen = 128
)

// record is one change's pair of events.
type record struct {
	workspace, platform event.Event
}

// change describes an operator's change for record: the workspace's
// event carries props (and the reason when shared), the platform's props,
// the workspace, the operator and the reason.
type changeEvent struct {
	name, resource string
	changes        map[string]event.Change
	props          map[string]any
	reason         string
	shareReason    bool
}

// events returns the pair of events of a change to workspace ws.
func (h *handler) events(c echo.Context, ws string, ch changeEvent) record {
	now := h.o.Now().UTC()
	tenant := map[string]any{}
	for k, v := range ch.props {
		tenant[k] = v
	}
	if ch.shareReason && ch.reason != "" {
		tenant["reason"] = ch.reason
	}
	platform := map[string]any{"workspace_id": ws, "changed_by": operator(c)}
	for k, v := range ch.props {
		platform[k] = v
	}
	if ch.reason != "" {
		platform["reason"] = ch.reason
		platform["reason_shared"] = ch.shareReason
	}
	resource := event.Resource{ID: ws, Name: ch.resource}
	return record{
		workspace: event.Event{WorkspaceID: ws, Event: ch.name, Timestamp: now, Actor: OperatorActor,
			Resource: resource, Changes: ch.changes, Properties: mustJSON(tenant)},
		platform: event.Event{WorkspaceID: credential.PlatformWorkspace, Event: ch.name, Timestamp: now,
			Actor:    event.Actor{Type: event.ActorUser, ID: operator(c), Name: operator(c)},
			Resource: resource, Changes: ch.changes, Properties: mustJSON(platform),
			Context: event.Context{IP: c.RealIP(), UserAgent: truncate(c.Request().UserAgent(), userAgentLen),
				RequestID: truncate(c.Request().Header.Get(echo.HeaderXRequestID), requestIDLen)}},
	}
}

// emit records a change: the platform trail first, then the workspace's.
// An error means the change must not take effect.
func (h *handler) emit(ctx context.Context, r record) error {
	if err := h.o.Emitter.Emit(ctx, r.platform); err != nil {
		return err
	}
	return h.o.Emitter.Emit(ctx, r.workspace)
}

func change(old, new any) event.Change {
	return event.Change{Old: mustJSON(old), New: mustJSON(new)}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("encode " + err.Error()) // only plain values are encoded here
	}
	return b
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
