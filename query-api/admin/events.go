package admin

// The audit events of operator changes, recorded in the workspace's own
// trail with the operator as the actor.

import (
	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/event"
)

// Catalogue names of the operators' events.
const (
	EventRetentionChanged = "Audit Retention Changed"
	EventHoldPlaced       = "Audit Legal Hold Placed"
	EventHoldReleased     = "Audit Legal Hold Released"
	EventArchiveRestored  = "Audit Archive Restored"
)

// userAgentLen and requestIDLen bound the request's context in an event.
const (
	userAgentLen = 512
	requestIDLen = 128
)

// event returns the audit event of an operator's change to a workspace.
func (h *handler) event(c echo.Context, ws, name string, changes map[string]event.Change, props map[string]any) event.Event {
	ev := event.Event{
		WorkspaceID: ws,
		Event:       name,
		Timestamp:   h.o.Now().UTC(),
		Actor:       event.Actor{Type: event.ActorUser, ID: operator(c), Name: operator(c)},
		Resource:    event.Resource{ID: ws, Name: "Audit retention"},
		Changes:     changes,
		Context: event.Context{IP: c.RealIP(), UserAgent: truncate(c.Request().UserAgent(), userAgentLen),
			RequestID: truncate(c.Request().Header.Get(echo.HeaderXRequestID), requestIDLen)},
	}
	if name == EventArchiveRestored {
		ev.Resource.Name = "Audit archive"
	}
	if props["reason"] == "" {
		delete(props, "reason")
	}
	ev.Properties = mustJSON(props)
	return ev
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
