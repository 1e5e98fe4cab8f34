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

// field is one member of an object being encoded: a property's value
// (val), an audit field's text (str, isStr), or (kind) the audit changes
// or the object of overridden properties.
type field struct {
	key   string
	val   any
	str   string
	kind  fieldKind
	isStr bool
}

type fieldKind uint8

const (
	fieldValue fieldKind = iota
	fieldChanges
	fieldOverridden
)

// encoder is the scratch space of one encoding, pooled.
type encoder struct {
	buf        []byte
	props      []field
	overridden []field
}

var encoders = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 4096)} }}

// encodeTrackCall returns the encoded track call of ev with the given
// properties (after the plan and filters): the event's properties, then
// the audit fields (workspace_id, category, actor_*, resource_*, changes),
// which win over properties of the same names.
func encodeTrackCall(ev *event.Event, props map[string]any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer e.release()
	b, err := e.appendTrackCall(e.buf[:0], ev, props)
	e.buf = b
	if err != nil {
		return nil, fmt.Errorf("encode track call: %w", err)
	}
	return slices.Clone(b), nil
}

func (e *encoder) release() {
	clear(e.props)
	clear(e.overridden)
	e.props, e.overridden = e.props[:0], e.overridden[:0]
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
	e.collect(ev, props)
	b, err := appendFields(b, e.props, e.overridden, ev)
	if err != nil {
		return b, err
	}
	b = append(b, `,"context":`...)
	b = appendContext(b, &ev.Context)
	return append(b, '}'), nil
}

// collect gathers the track call's properties, sorted by name: the event's
// own (those named like audit fields in overridden), then the audit fields.
func (e *encoder) collect(ev *event.Event, props map[string]any) {
	for k, v := range props {
		if isAuditField(k) {
			e.overridden = append(e.overridden, field{key: k, val: v})
			continue
		}
		e.props = append(e.props, field{key: k, val: v})
	}
	text := func(k, v string, always bool) {
		if always || v != "" {
			e.props = append(e.props, field{key: k, str: v, isStr: true})
		}
	}
	text("workspace_id", ev.WorkspaceID, true)
	text("category", ev.Category, true)
	text("actor_type", ev.Actor.Type, true)
	text("actor_id", ev.Actor.ID, true)
	text("actor_name", ev.Actor.Name, false)
	text("actor_email", ev.Actor.Email, false)
	text("resource_type", ev.Resource.Type, false)
	text("resource_id", ev.Resource.ID, false)
	text("resource_name", ev.Resource.Name, false)
	if len(ev.Changes) > 0 {
		e.props = append(e.props, field{key: "changes", kind: fieldChanges})
	}
	if len(e.overridden) > 0 {
		e.props = append(e.props, field{key: overriddenProperties, kind: fieldOverridden})
		sortFields(e.overridden)
	}
	sortFields(e.props)
}

func sortFields(fs []field) {
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.key, b.key) })
}

// appendFields appends fs (sorted, names unique) as a JSON object; the
// member of kind fieldOverridden holds the object of overridden.
func appendFields(b []byte, fs, overridden []field, ev *event.Event) ([]byte, error) {
	b = append(b, '{')
	var err error
	for i := range fs {
		f := &fs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = json.AppendEscape(b, f.key, json.EscapeHTML)
		b = append(b, ':')
		switch {
		case f.isStr:
			b = json.AppendEscape(b, f.str, json.EscapeHTML)
		case f.kind == fieldChanges:
			b, err = json.Append(b, ev.Changes, encodeFlags)
		case f.kind == fieldOverridden:
			b, err = appendFields(b, overridden, nil, ev)
		default:
			b, err = appendValue(b, f.val)
		}
		if err != nil {
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
