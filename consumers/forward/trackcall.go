package forward

// Encoding of a track call, written field by field into a reused buffer.
// The bytes are those of json.Marshal (segmentio/encoding/json: HTML
// escaped, map keys sorted) of the TrackCall holding the same fields;
// TestEncodeTrackCallMatchesMarshal holds the two together.

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/event"
)

// encodeFlags are the flags of json.Marshal.
const encodeFlags = json.EscapeHTML | json.SortMapKeys

// auditFields are the track call properties that carry the audit event's
// own fields. They always hold the audit values (absent when the audit
// field is empty): an event property of the same name never poses as one.
// Such properties are forwarded under overriddenProperties instead.
var auditFields = []string{"workspace_id", "category", "actor_type", "actor_id", "actor_name", "actor_email",
	"resource_type", "resource_id", "resource_name", "changes", overriddenProperties}

// overriddenProperties holds the event properties whose names are audit
// fields, by name.
const overriddenProperties = "overridden_properties"

// isAuditField reports whether k is one of auditFields.
func isAuditField(k string) bool {
	switch k {
	case "workspace_id", "category", "actor_type", "actor_id", "actor_name", "actor_email",
		"resource_type", "resource_id", "resource_name", "changes", overriddenProperties:
		return true
	}
	return false
}

// field is one member of an object being encoded.
type field struct {
	key string
	val any
}

// encoder is the scratch space of one encoding, pooled.
type encoder struct {
	buf        []byte
	props      []field // the event's own properties
	overridden []field // those named like audit fields
	changes    []string
	// stored are the event's changes as event.DecodeStored returned them
	// (nil: in ev.Changes).
	stored json.RawMessage
}

var encoders = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 4096)} }}

// encodeTrackCall returns the encoded track call of ev with the given
// properties (after the plan and filters): the event's properties, then
// the audit fields (workspace_id, category, actor_*, resource_*, changes),
// which win over properties of the same names.
//
// The changes are ev.Changes or, when those are empty, stored: the changes
// as event.DecodeStored returns them.
func encodeTrackCall(ev *event.Event, props map[string]any, stored json.RawMessage) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer e.release()
	if len(ev.Changes) == 0 {
		e.stored = stored
	}
	b, err := e.appendTrackCall(e.buf[:0], ev, props)
	e.buf = b
	if err != nil {
		return nil, fmt.Errorf("encode track call: %w", err)
	}
	return slices.Clone(b), nil
}

func (e *encoder) release() {
	clear(e.props) // no reference to an event outlives its encoding
	clear(e.overridden)
	clear(e.changes)
	e.props, e.overridden, e.changes, e.stored = e.props[:0], e.overridden[:0], e.changes[:0], nil
	if cap(e.buf) > 64<<10 {
		e.buf = make([]byte, 0, 4096)
	}
	encoders.Put(e)
}

func (e *encoder) appendTrackCall(b []byte, ev *event.Event, props map[string]any) ([]byte, error) {
	b = append(b, `{"type":"track","event":`...)
	b = json.AppendEscape(b, ev.Event, json.EscapeHTML)
	b = append(b, `,"userId":`...)
	b = json.AppendEscape(b, ev.Actor.ID, json.EscapeHTML)
	b = append(b, `,"messageId":`...)
	b = json.AppendEscape(b, ev.ID, json.EscapeHTML)
	b = append(b, `,"timestamp":`...)
	var ts [64]byte
	b = json.AppendEscape(b, string(ev.Timestamp.UTC().AppendFormat(ts[:0], time.RFC3339Nano)), json.EscapeHTML)
	b = append(b, `,"properties":`...)
	b, err := e.appendProperties(b, ev, props)
	if err != nil {
		return b, err
	}
	b = append(b, `,"context":`...)
	b = appendContext(b, &ev.Context)
	return append(b, '}'), nil
}

// appendProperties appends the track call's properties, sorted by name:
// the event's own properties merged with the audit fields, which are
// written in their sorted order (auditOrder).
func (e *encoder) appendProperties(b []byte, ev *event.Event, props map[string]any) ([]byte, error) {
	for k, v := range props {
		if isAuditField(k) {
			e.overridden = append(e.overridden, field{k, v})
		} else {
			e.props = append(e.props, field{k, v})
		}
	}
	sortFields(e.props)
	sortFields(e.overridden)
	b = append(b, '{')
	n, i := 0, 0
	var err error
	for _, a := range auditOrder {
		v, present := e.audit(ev, a)
		if !present {
			continue
		}
		for ; i < len(e.props) && e.props[i].key < a; i++ {
			if b, err = appendField(b, n, e.props[i]); err != nil {
				return b, err
			}
			n++
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = json.AppendEscape(b, a, json.EscapeHTML)
		b = append(b, ':')
		switch a {
		case "changes":
			b, err = e.appendChanges(b, ev.Changes)
		case overriddenProperties:
			b, err = appendObject(b, e.overridden)
		default:
			b = json.AppendEscape(b, v, json.EscapeHTML)
		}
		if err != nil {
			return b, err
		}
	}
	for ; i < len(e.props); i++ {
		if b, err = appendField(b, n, e.props[i]); err != nil {
			return b, err
		}
		n++
	}
	return append(b, '}'), nil
}

// auditOrder is auditFields sorted.
var auditOrder = func() []string {
	s := slices.Clone(auditFields)
	slices.Sort(s)
	return s
}()

// audit returns the text of the audit field a and whether the track call
// holds it: workspace_id, category, actor_type and actor_id always; the
// other names and ids when not empty; changes when there are any;
// overridden_properties when a property was moved there.
func (e *encoder) audit(ev *event.Event, a string) (string, bool) {
	switch a {
	case "workspace_id":
		return ev.WorkspaceID, true
	case "category":
		return ev.Category, true
	case "actor_type":
		return ev.Actor.Type, true
	case "actor_id":
		return ev.Actor.ID, true
	case "actor_name":
		return ev.Actor.Name, ev.Actor.Name != ""
	case "actor_email":
		return ev.Actor.Email, ev.Actor.Email != ""
	case "resource_type":
		return ev.Resource.Type, ev.Resource.Type != ""
	case "resource_id":
		return ev.Resource.ID, ev.Resource.ID != ""
	case "resource_name":
		return ev.Resource.Name, ev.Resource.Name != ""
	case "changes":
		// "{}" when stored holds no change.
		return "", len(ev.Changes) > 0 || len(e.stored) > 2
	case overriddenProperties:
		return "", len(e.overridden) > 0
	}
	return "", false
}

// appendChanges appends the audit changes, keys sorted, each
// {"old", "new"} without the empty sides. Stored changes (e.stored) are
// written so already (event.AppendChanges: keys sorted and plain, values
// compact), and are copied when nothing in them needs escaping; otherwise
// they are decoded and written as ev.Changes would be.
func (e *encoder) appendChanges(b []byte, changes map[string]event.Change) ([]byte, error) {
	if len(changes) == 0 && len(e.stored) > 0 {
		if plain(e.stored) {
			return append(b, e.stored...), nil
		}
		if err := json.Unmarshal(e.stored, &changes); err != nil {
			return b, err
		}
	}
	for k := range changes {
		e.changes = append(e.changes, k)
	}
	slices.Sort(e.changes)
	b = append(b, '{')
	var err error
	for i, k := range e.changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = json.AppendEscape(b, k, json.EscapeHTML)
		b = append(b, ":{"...)
		c := changes[k]
		if len(c.Old) > 0 {
			b = append(b, `"old":`...)
			if b, err = appendRaw(b, c.Old); err != nil {
				return b, err
			}
		}
		if len(c.New) > 0 {
			if len(c.Old) > 0 {
				b = append(b, ',')
			}
			b = append(b, `"new":`...)
			if b, err = appendRaw(b, c.New); err != nil {
				return b, err
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendRaw appends a JSON value (valid, as event.Decode gives changes)
// as json.Append writes a json.RawMessage: as it is when there is nothing
// to compact or escape in it (printable ASCII without spaces, '<', '>'
// or '&'), else through json.Append.
func appendRaw(b []byte, raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 || !plain(raw) {
		return json.Append(b, raw, encodeFlags)
	}
	return append(b, raw...), nil
}

// plain reports whether raw is printable ASCII without spaces, '<', '>'
// or '&': valid JSON so written is compact and needs no escaping.
func plain(raw []byte) bool {
	for _, c := range raw {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func sortFields(fs []field) {
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.key, b.key) })
}

// appendField appends f as the member n (from 0) of an object.
func appendField(b []byte, n int, f field) ([]byte, error) {
	if n > 0 {
		b = append(b, ',')
	}
	b = json.AppendEscape(b, f.key, json.EscapeHTML)
	b = append(b, ':')
	return appendValue(b, f.val)
}

// appendObject appends fs (sorted, names unique) as a JSON object.
func appendObject(b []byte, fs []field) ([]byte, error) {
	b = append(b, '{')
	var err error
	for i, f := range fs {
		if b, err = appendField(b, i, f); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendValue appends a decoded JSON value.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return json.AppendEscape(b, x, json.EscapeHTML), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case nil:
		return append(b, "null"...), nil
	}
	return json.Append(b, v, encodeFlags)
}

// appendContext appends the track call's context: ip, the library,
// request_id and userAgent (in that order, the sorted one), each text only
// when not empty.
func appendContext(b []byte, c *event.Context) []byte {
	b = append(b, '{')
	if c.IP != "" {
		b = append(b, `"ip":`...)
		b = json.AppendEscape(b, c.IP, json.EscapeHTML)
		b = append(b, ',')
	}
	b = append(b, `"library":{"name":"audittrail-forwarder","version":"1"}`...)
	if c.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = json.AppendEscape(b, c.RequestID, json.EscapeHTML)
	}
	if c.UserAgent != "" {
		b = append(b, `,"userAgent":`...)
		b = json.AppendEscape(b, c.UserAgent, json.EscapeHTML)
	}
	return append(b, '}')
}
