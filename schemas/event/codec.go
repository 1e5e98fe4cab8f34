package event

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/jsonlimit"
)

// wire is the JSON shape accepted on input. Timestamps stay strings so that a
// bad one is reported against its field rather than as a decoding failure.
type wire struct {
	ID          string            `json:"id"`
	WorkspaceID string            `json:"workspace_id"`
	Event       string            `json:"event"`
	Category    string            `json:"category"`
	Timestamp   string            `json:"timestamp"`
	ReceivedAt  string            `json:"received_at"`
	Actor       Actor             `json:"actor"`
	Resource    Resource          `json:"resource"`
	Changes     map[string]Change `json:"changes"`
	Context     Context           `json:"context"`
	Sender      Sender            `json:"sender"`
	Properties  json.RawMessage   `json:"properties"`
	// ChangesJSON holds the changes instead of Changes when the fast path
	// was asked to keep them compact (see DecodeStored).
	ChangesJSON json.RawMessage `json:"-"`
}

const parseFlags = json.DisallowUnknownFields | json.DontMatchCaseInsensitiveStructFields | json.DontCopyString | json.DontCopyRawMessage

// Decode parses one JSON event. It checks the shape (JSON syntax, known
// fields, value types, timestamp format, UTF-8) and the bounds of the JSON
// (see CheckJSON: depth, keys per object, duplicate keys, control
// characters) and returns a *ValidationError naming the offending field;
// it does not check the catalogue, required fields or the rules of each
// field: call Policy.Validate for that.
//
// To avoid copying, strings and raw JSON in the returned event may share
// memory with data: do not modify data while the event is in use.
func Decode(data []byte) (Event, error) {
	e, _, err := decode(data, false)
	return e, err
}

// DecodeStored decodes data as Decode does, for storage: when the changes
// are already written as AppendChanges writes them (as Encode does, and so
// every event the ingest gateway publishes), it returns them as that JSON,
// sharing memory with data, and leaves e.Changes nil, which saves building
// the map and encoding it again. Such changes are within what
// Policy.Validate accepts. Other changes are decoded into e.Changes, and
// changes is nil.
func DecodeStored(data []byte) (e Event, changes json.RawMessage, err error) {
	return decode(data, true)
}

func decode(data []byte, compact bool) (Event, json.RawMessage, error) {
	// The fast path checks UTF-8 and the bounds as it goes.
	w, ok := fastDecode(data, compact)
	if !ok {
		if !utf8.Valid(data) {
			// The JSON decoder would silently replace invalid bytes; an
			// audit record must not be altered without notice.
			return Event{}, nil, single("", "the event is not valid UTF-8")
		}
		limitErr := CheckJSON(data)
		if limitErr != nil && !syntaxError(limitErr) {
			return Event{}, nil, limitErr
		}
		var err error
		if w, err = parseWire(data); err != nil {
			return Event{}, nil, err
		}
		if limitErr != nil {
			return Event{}, nil, limitErr
		}
	}
	e, err := fromWire(&w)
	return e, w.ChangesJSON, err
}

// CheckJSON checks the JSON of one event against the bounds every event
// obeys (package jsonlimit): objects and arrays nested at most
// jsonlimit.MaxDepth deep counting the event itself, at most
// jsonlimit.MaxKeys keys in one object, no key twice in one object, and no
// control character in any string or key other than tab, line feed and
// carriage return. It returns nil or a *ValidationError naming the field,
// e.g. "properties.items[2].name". Decode checks this; producers that
// encode events themselves (the emitter) check their encoding with it.
func CheckJSON(data []byte) error {
	err := jsonlimit.Check(data)
	if err == nil {
		return nil
	}
	var le *jsonlimit.Error
	if !errors.As(err, &le) {
		return single("", err.Error())
	}
	if le.Kind == jsonlimit.Syntax {
		return &ValidationError{Fields: []FieldError{{Field: le.Path, Message: "invalid JSON: " + le.Message}}, syntax: true}
	}
	return single(le.Path, le.Message)
}

func syntaxError(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve) && ve.syntax
}

// parseWire is the general decoder: any input, with an error naming the
// offending field.
func parseWire(data []byte) (wire, error) {
	var w wire
	rest, err := json.Parse(data, &w, parseFlags)
	if err != nil {
		return wire{}, decodeError(data, err)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return wire{}, single("", "unexpected data after the event object")
	}
	return w, nil
}

func fromWire(w *wire) (Event, error) {
	e := Event{
		ID:          w.ID,
		WorkspaceID: w.WorkspaceID,
		Event:       w.Event,
		Category:    w.Category,
		Actor:       w.Actor,
		Resource:    w.Resource,
		Changes:     w.Changes,
		Context:     w.Context,
		Sender:      w.Sender,
		Properties:  w.Properties,
	}
	var errs ValidationError
	if w.Timestamp != "" {
		ts, err := ParseTime(w.Timestamp)
		if err != nil {
			errs.add("timestamp", err.Error())
		}
		e.Timestamp = ts
	}
	if w.ReceivedAt != "" {
		ts, err := ParseTime(w.ReceivedAt)
		if err != nil {
			errs.add("received_at", err.Error())
		}
		e.ReceivedAt = ts
	}
	if len(e.Properties) > 0 && string(e.Properties) == "null" {
		e.Properties = nil
	}
	if len(e.Properties) > 0 && e.Properties[0] != '{' {
		errs.add("properties", "must be a JSON object")
	}
	if len(errs.Fields) > 0 {
		return e, errs.escape()
	}
	return e, nil
}

// ParseTime parses an RFC 3339 timestamp with an optional fraction of a
// second and returns it in UTC.
func ParseTime(s string) (time.Time, error) {
	if t, ok := parseUTC(s); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 timestamp such as 2026-11-25T10:00:00Z, got %q", truncate(s, 64))
	}
	return t.UTC(), nil
}

// parseUTC parses the form Encode writes and most producers send,
// "2006-01-02T15:04:05Z" with up to nine digits of a fraction of a second
// before the Z, without time.Parse's general layout machinery: every event
// carries two timestamps, parsed on every hop (about 5% of the writer's
// own work per event). It returns ok=false for anything else, valid or
// not, which ParseTime leaves to time.Parse; where it returns ok=true the
// result equals time.Parse's, in UTC (FuzzParseTimeMatchesTimeParse).
func parseUTC(s string) (time.Time, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(v string) int {
		n := 0
		for i := 0; i < len(v); i++ {
			c := v[i] - '0'
			if c > 9 {
				return -1
			}
			n = n*10 + int(c)
		}
		return n
	}
	year, month, day := num(s[0:4]), num(s[5:7]), num(s[8:10])
	hour, minute, sec := num(s[11:13]), num(s[14:16]), num(s[17:19])
	ns := 0
	if frac := s[19 : len(s)-1]; frac != "" {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		if ns = num(frac[1:]); ns < 0 {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			ns *= 10
		}
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, ns, time.UTC), true
}

// daysIn is the number of days of month (1-12) in year.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// Encode appends the JSON encoding of e to dst: compact, with the keys of
// changes sorted, so equal events encode to equal bytes.
func Encode(dst []byte, e *Event) ([]byte, error) {
	return json.Append(dst, e, json.SortMapKeys)
}

// Marshal returns the JSON encoding of e, as Encode.
func Marshal(e *Event) ([]byte, error) {
	return Encode(nil, e)
}

// decodeError turns a decoder error into a field-level error. The fast
// decoder does not say which field had the wrong type, so on this (rare) path
// the standard library decodes once more to find it.
func decodeError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return single("", "invalid JSON: "+strings.TrimPrefix(se.Error(), "json: "))
	}
	dec := stdjson.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w wire
	stdErr := dec.Decode(&w)
	var ute *stdjson.UnmarshalTypeError
	if errors.As(stdErr, &ute) {
		field := ute.Field
		return single(field, fmt.Sprintf("must be %s, got JSON %s", describeType(ute.Type.String()), ute.Value))
	}
	msg := err.Error()
	if stdErr != nil {
		msg = stdErr.Error()
	}
	if i := strings.Index(msg, "unknown field \""); i >= 0 {
		name := strings.TrimSuffix(msg[i+len("unknown field \""):], "\"")
		return single(name, "unknown field")
	}
	return single("", "invalid JSON: "+strings.TrimPrefix(msg, "json: "))
}

func describeType(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	case strings.HasPrefix(goType, "event."), goType == "json.RawMessage":
		return "an object"
	default:
		return "a " + goType
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
