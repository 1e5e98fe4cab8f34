package settings

// Checking a settings body: its shape, then what it says (a tracking
// plan's schemas compiled, within a plan check's slot).

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// parse is parse within a plan check's slot for a tracking plan (seconds
// of CPU for a large one), held only while the body is checked: recording
// and storing the change (Kafka) happen outside it.
func (h *handler) parse(c echo.Context, kind string, body []byte, old any) (any, error) {
	ws := c.Param("workspace_id")
	names := func(name string) error { return h.o.Events.CheckName(ws, name) }
	if kind != trackingplan.KindPlan {
		return parse(kind, body, old, names)
	}
	var next any
	err := h.checking(c, func() error {
		var err error
		next, err = parse(kind, body, old, names)
		return err
	})
	return next, err
}

var resourceNames = map[string]string{
	trackingplan.KindForwarding: "Audit forwarding",
	trackingplan.KindPlan:       "Audit forwarding tracking plan",
	trackingplan.KindFilters:    "Audit forwarding destination filters",
	trackingplan.KindAlerts:     "Audit alert webhook",
}

// parse decodes and validates a PUT body: a JSON object (anything else,
// null included, is a 400 and changes nothing) meeting the rules for new
// settings (trackingplan's ValidateNew), with event names checked by names.
// For forwarding, an omitted write key or the masked one shown by GET keeps
// the stored key, but only for the URL it was saved with: a stored key is
// never sent to another URL (which would hand it to whoever runs that URL),
// so a new URL needs the key again (400 on target.write_key while
// forwarding is enabled; otherwise the stored key is dropped). For alerts,
// an omitted webhook_url or the masked one shown by GET keeps the stored
// URL, and "" or null removes it. A null anywhere else is refused
// (nullField).
func parse(kind string, body []byte, old any, names trackingplan.EventNames) (any, error) {
	if err := checkDocument(kind, body); err != nil {
		return nil, err
	}
	switch kind {
	case trackingplan.KindForwarding:
		var f trackingplan.Forwarding
		if err := trackingplan.Decode(body, &f); err != nil {
			return nil, err
		}
		prev := old.(*trackingplan.Forwarding)
		if f.Target.WriteKey == "" || masked(prev, f.Target.WriteKey) {
			k, ok := storedKey(prev, f.Target.URL)
			switch {
			case ok:
				f.Target.WriteKey = k
			case prev.Target.WriteKey != "" && f.Enabled:
				return nil, &trackingplan.FieldError{Field: "target.write_key",
					Message: "enter the write key again for the new target URL: a saved key is only sent to the URL it was saved with"}
			default:
				f.Target.WriteKey = ""
			}
		}
		for i := range f.SavedTargets {
			t := &f.SavedTargets[i]
			if t.WriteKey == "" || masked(prev, t.WriteKey) {
				t.WriteKey, _ = storedKey(prev, t.URL) // none: a saved target without a key
			}
		}
		return &f, f.ValidateNew()
	case trackingplan.KindPlan:
		p, _, err := parsePlan(body, names)
		if err != nil {
			return nil, err
		}
		return p, nil
	case trackingplan.KindFilters:
		var f trackingplan.Filters
		if err := trackingplan.Decode(body, &f); err != nil {
			return nil, err
		}
		if _, err := f.Compile(); err != nil {
			return nil, err
		}
		return &f, f.ValidateNew(names)
	case trackingplan.KindAlerts:
		var a trackingplan.Alerts
		if err := trackingplan.Decode(body, &a); err != nil {
			return nil, err
		}
		prev := old.(*trackingplan.Alerts)
		if prev.WebhookURL != "" && (a.WebhookURL == MaskURL(prev.WebhookURL) || a.WebhookURL == "" && !hasField(body, "webhook_url")) {
			a.WebhookURL = prev.WebhookURL
		}
		return &a, a.ValidateNew(names)
	}
	return nil, fmt.Errorf("unknown settings kind %q", kind)
}

// checkDocument refuses what no settings document of kind may be: anything
// but a JSON object, or a null where the kind has none (nullField).
func checkDocument(kind string, body []byte) error {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return &trackingplan.FieldError{Message: "the body must be a JSON object with the settings; send {} to reset them to their defaults"}
	}
	if f := nullField(kind, body); f != "" {
		return &trackingplan.FieldError{Field: f, Message: "must not be null; leave the field out for its default"}
	}
	return nil
}

// parsePlan decodes and validates a tracking plan's document (one
// checkDocument took), and returns it with its defaults filled in and its
// schemas compacted, and compiled: compiling is how a plan is validated,
// and the preview runs the compiled plan rather than compile it twice.
func parsePlan(body []byte, names trackingplan.EventNames) (*trackingplan.Plan, *trackingplan.CompiledPlan, error) {
	var p trackingplan.Plan
	if err := trackingplan.Decode(body, &p); err != nil {
		return nil, nil, err
	}
	if f := emptyField(body, "on_violation", "unplanned_events", "unplanned_properties"); f != "" {
		return nil, nil, &trackingplan.FieldError{Field: f, Message: "must not be empty; leave the field out for its default"}
	}
	if err := p.ValidateNew(names); err != nil {
		return nil, nil, err
	}
	cp, err := p.Compile()
	if err != nil {
		return nil, nil, err
	}
	p.UnplannedEvents = orDefault(p.UnplannedEvents, trackingplan.Allow)
	p.UnplannedProperties = orDefault(p.UnplannedProperties, trackingplan.Allow)
	p.OnViolation = orDefault(p.OnViolation, trackingplan.Allow)
	for n, pe := range p.Events {
		var buf bytes.Buffer
		if len(pe.Properties) > 0 && json.Compact(&buf, pe.Properties) == nil {
			pe.Properties = buf.Bytes()
			p.Events[n] = pe
		}
	}
	return &p, cp, nil
}

// emptyField returns the first of fields that the JSON object body gives
// as "" at its top level, "" when none is. Decoded, "" reads as the
// field's default, like an omitted field, so it would pass for a choice.
func emptyField(body []byte, fields ...string) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return ""
	}
	for _, f := range fields {
		if string(top[f]) == `""` {
			return f
		}
	}
	return ""
}

// hasField reports whether the JSON object body names field at its top
// level.
func hasField(body []byte, field string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	_, ok := top[field]
	return ok
}
