// Package trackingplan is the contract of a workspace's audit forwarding
// settings.
//
// The settings are the forwarding target, the tracking plan (JSON Schema per
// event, handling of unplanned events and properties, violations), the
// destination filters (CEL conditions with actions) and the alert webhook.
// It parses and validates each kind with errors naming the offending field,
// compiles plans and filters once into values that are safe for concurrent
// use, and defines the record format of the compacted settings topic.
package trackingplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	sjson "github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/jsonlimit"
)

// Kinds of settings; each is stored under its own key.
const (
	KindForwarding = "forwarding"
	KindPlan       = "tracking-plan"
	KindFilters    = "destination-filters"
	KindAlerts     = "alerts"
)

// Kinds lists every settings kind.
var Kinds = []string{KindForwarding, KindPlan, KindFilters, KindAlerts}

// FieldError is a settings value that is not acceptable, naming the field
// (a dotted path such as "filters[2].if" or "events.Source Created.properties").
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Forwarding is the forwarding target of a workspace. Off by default.
type Forwarding struct {
	Enabled bool   `json:"enabled"`
	Target  Target `json:"target"`
	// HardFailuresOnly drops "... Run Failed" and "... Sync Failed" events
	// that are not the final attempt (attempt < max_attempts).
	HardFailuresOnly bool `json:"hard_failures_only"`
	// SavedTargets are other targets the owner keeps to switch to or test,
	// each with a name; events go to Target only. Settings saved before
	// them have none.
	SavedTargets []Target `json:"saved_targets,omitempty"`
}

// MaxSavedTargets bounds the saved targets of a workspace.
const MaxSavedTargets = 10

// Target is an event-streams source speaking the HTTP tracking API.
type Target struct {
	// Name is the owner's name for the target ("Warehouse source"),
	// optional; settings saved before it have none.
	Name     string `json:"name,omitempty"`
	URL      string `json:"url,omitempty"` // omitted when none is set
	WriteKey string `json:"write_key"`
}

// MaxTargetName bounds a target's name, in characters.
const MaxTargetName = 100

// Masked returns f with the write key reduced to its last 4 characters
// (fewer for short keys), for display and for the audit trail.
func (f Forwarding) Masked() Forwarding {
	f.Target.WriteKey = MaskKey(f.Target.WriteKey)
	if f.SavedTargets != nil {
		saved := make([]Target, len(f.SavedTargets))
		for i, t := range f.SavedTargets {
			t.WriteKey = MaskKey(t.WriteKey)
			saved[i] = t
		}
		f.SavedTargets = saved
	}
	return f
}

// SavedTarget returns the saved target named name.
func (f Forwarding) SavedTarget(name string) (Target, bool) {
	for _, t := range f.SavedTargets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// MaxWriteKey bounds a write key, in characters.
const MaxWriteKey = 512

// MaskKey hides all but the last 4 characters of a secret; keys of 8
// characters or fewer are hidden entirely. It counts characters, not
// bytes, so a masked key is whole UTF-8.
func MaskKey(k string) string {
	if k == "" {
		return ""
	}
	r := []rune(k)
	if len(r) <= 8 {
		return "****"
	}
	return "****" + string(r[len(r)-4:])
}

// Validate checks f.
func (f Forwarding) Validate() error {
	if f.Target.URL != "" || f.Enabled {
		if err := ValidateURL(f.Target.URL); err != nil {
			return fieldErr("target.url", "%s", err)
		}
	}
	if f.Enabled && strings.TrimSpace(f.Target.WriteKey) == "" {
		return fieldErr("target.write_key", "required when forwarding is enabled")
	}
	if utf8.RuneCountInString(f.Target.Name) > MaxTargetName {
		return fieldErr("target.name", "longer than %d characters", MaxTargetName)
	}
	if utf8.RuneCountInString(f.Target.WriteKey) > MaxWriteKey {
		return fieldErr("target.write_key", "longer than %d characters", MaxWriteKey)
	}
	return f.validateSaved()
}

// validateSaved checks the saved targets: at most MaxSavedTargets, each
// with a name of 1-MaxTargetName characters used once (and not the current
// target's), a URL and a key of at most MaxWriteKey characters.
func (f Forwarding) validateSaved() error {
	if len(f.SavedTargets) > MaxSavedTargets {
		return fieldErr("saved_targets", "at most %d saved targets", MaxSavedTargets)
	}
	names := map[string]bool{}
	if f.Target.Name != "" {
		names[f.Target.Name] = true
	}
	for i, t := range f.SavedTargets {
		at := func(s string) string { return fmt.Sprintf("saved_targets[%d].%s", i, s) }
		switch n := utf8.RuneCountInString(t.Name); {
		case strings.TrimSpace(t.Name) == "":
			return fieldErr(at("name"), "required: a saved target needs a name")
		case n > MaxTargetName:
			return fieldErr(at("name"), "longer than %d characters", MaxTargetName)
		case names[t.Name]:
			return fieldErr(at("name"), "%q is used by another target", t.Name)
		}
		names[t.Name] = true
		if err := ValidateURL(t.URL); err != nil {
			return fieldErr(at("url"), "%s", err)
		}
		if utf8.RuneCountInString(t.WriteKey) > MaxWriteKey {
			return fieldErr(at("write_key"), "longer than %d characters", MaxWriteKey)
		}
	}
	return nil
}

// ValidateURL accepts absolute http and https URLs with a host, an
// optional port of 1-65535 and an optional query string. A fragment,
// credentials, and spaces or control characters anywhere are refused.
// Whether the host may be called is not decided here (the API and the
// forwarder check it against the outbound policy).
func ValidateURL(s string) error {
	if s == "" {
		return errors.New("required: an http or https URL")
	}
	if len(s) > 2048 {
		return errors.New("longer than 2048 characters")
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return errors.New("must not contain spaces or control characters (percent-encode them)")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Opaque != "" {
		return errors.New("not an absolute URL (want scheme://host/path)")
	}
	if u.Hostname() == "" {
		return errors.New("has no host")
	}
	if u.User != nil {
		return errors.New("must not carry credentials (use write_key)")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("must not have a fragment (#...)")
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1-65535", p)
		}
	}
	return nil
}

// BatchURL is where the target's track calls are posted: the target URL
// with "v1/batch" appended to its path (a trailing slash or none), its
// query string kept.
// A URL that can never be called (not a URL, not http(s), no host, a port
// outside 1-65535) is ErrInvalidTargetURL, which does not quote the URL.
func (t Target) BatchURL() (string, error) {
	u, err := Callable(t.URL)
	if err != nil {
		return "", ErrInvalidTargetURL
	}
	return u.JoinPath("v1", "batch").String(), nil
}

// ErrInvalidTargetURL is a stored target URL that can never be called.
var ErrInvalidTargetURL = errors.New("invalid target URL")

// Callable parses a stored URL the platform calls and refuses one that no
// call could ever reach: not a URL, a scheme other than http and https,
// no host, or a port outside 1-65535. It is narrower than ValidateURL,
// which applies when a URL is saved; stored URLs that pass this keep
// working. The error does not quote the URL (a webhook's path is its
// secret).
func Callable(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("not an http or https URL")
	case u.Hostname() == "":
		return nil, errors.New("no host")
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, errors.New("invalid port")
		}
	}
	return u, nil
}

// Alerts is the chat incoming-webhook target: every event whose name is in
// Events is posted as {"text": "..."} to WebhookURL.
type Alerts struct {
	Enabled    bool     `json:"enabled"`
	WebhookURL string   `json:"webhook_url"`
	Events     []string `json:"events"`
}

// MaxAlertEvents bounds the alert event list.
const MaxAlertEvents = 500

// Validate checks a.
func (a Alerts) Validate() error {
	if a.WebhookURL != "" || a.Enabled {
		if err := ValidateURL(a.WebhookURL); err != nil {
			return fieldErr("webhook_url", "%s", err)
		}
	}
	if a.Enabled && len(a.Events) == 0 {
		return fieldErr("events", "list at least one event name when alerts are enabled")
	}
	if len(a.Events) > MaxAlertEvents {
		return fieldErr("events", "at most %d names", MaxAlertEvents)
	}
	seen := map[string]bool{}
	for i, n := range a.Events {
		if strings.TrimSpace(n) == "" || len(n) > 200 {
			return fieldErr(fmt.Sprintf("events[%d]", i), "an event name of 1-200 characters")
		}
		if seen[n] {
			return fieldErr(fmt.Sprintf("events[%d]", i), "%q listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

// Triggers reports whether an event named name triggers the alert.
func (a Alerts) Triggers(name string) bool {
	if !a.Enabled {
		return false
	}
	for _, n := range a.Events {
		if n == name {
			return true
		}
	}
	return false
}

// Decode parses a settings document strictly (unknown fields, and keys
// that match a field's name only in another case, are errors)
// into v, returning a *FieldError naming the field on failure. The
// document obeys the bounds of every contract document (package
// jsonlimit): no key twice in one object, at most jsonlimit.MaxDepth levels
// of objects and arrays, at most jsonlimit.MaxKeys keys in one object, no
// control character but tab, line feed and carriage return.
func Decode(data []byte, v any) error {
	if err := checkLimits("", data); err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fieldErr("", "empty or truncated JSON body")
	}
	rest, err := sjson.Parse(data, v, decodeFlags)
	if err != nil {
		return decodeError(err)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return fieldErr("", "unexpected data after the settings object")
	}
	return nil
}

// decodeFlags make keys match field names exactly: encoding/json would
// also take "ENABLED" or "Target" for a field, so one document could give
// a field two values, the last one winning, past the duplicate-key rule.
const decodeFlags = sjson.DisallowUnknownFields | sjson.UseNumber | sjson.DontMatchCaseInsensitiveStructFields

// checkLimits checks data, found at field, against the bounds of
// jsonlimit. Syntax errors are left to the decoder, which reports them.
func checkLimits(field string, data []byte) error {
	err := jsonlimit.Check(data)
	var le *jsonlimit.Error
	if err == nil || !errors.As(err, &le) || le.Kind == jsonlimit.Syntax {
		return nil
	}
	switch {
	case le.Path == "":
	case field == "" || le.Path[0] == '[':
		field += le.Path
	default:
		field += "." + le.Path
	}
	return fieldErr(field, "%s", le.Message)
}

func decodeError(err error) *FieldError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Type == reflect.TypeFor[json.Number]() {
			return fieldErr(te.Field, "must be a number, not %s", valueKind(te.Value))
		}
		return fieldErr(te.Field, "must be %s, not %s", jsonKind(te.Type.Kind().String()), valueKind(te.Value))
	case errors.As(err, &se):
		return fieldErr("", "malformed JSON at byte %d", se.Offset)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fieldErr(strings.Trim(f, `"`), "unknown field")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fieldErr("", "empty or truncated JSON body")
	}
	if strings.Contains(msg, "into Number") {
		return fieldErr("", "a number field holds something that is not a number")
	}
	// Other decoder messages name Go types: say what is wrong in JSON terms.
	return fieldErr("", "not a valid settings document")
}

// valueKind names the JSON kind of a value the decoder found, from its
// first character (the decoder hands the rest of the document, quoted,
// which an answer never echoes).
func valueKind(v string) string {
	if u, err := strconv.Unquote(v); err == nil {
		v = u
	}
	v = strings.TrimLeft(v, " \t\r\n")
	switch {
	case v == "":
		return "another kind of value"
	case v[0] == '{':
		return "an object"
	case v[0] == '[':
		return "an array"
	case v[0] == '"':
		return "a string"
	case v[0] == 't' || v[0] == 'f':
		return "a boolean"
	case v[0] == 'n':
		return "null"
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		return "a number"
	}
	return "another kind of value"
}

func jsonKind(k string) string {
	switch k {
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int64", "float64":
		return "a number"
	}
	return k
}

// Record is the value of a settings-topic record; the record key is
// Key(WorkspaceID, Kind). Settings holds the JSON of the kind's type
// (Forwarding, Plan, Filters, Alerts), write key included: the settings
// topic must be readable only by the API and the forwarder.
type Record struct {
	WorkspaceID string          `json:"workspace_id"`
	Kind        string          `json:"kind"`
	UpdatedAt   time.Time       `json:"updated_at"`
	UpdatedBy   string          `json:"updated_by,omitempty"`
	Settings    json.RawMessage `json:"settings"`
}

// Key is the settings-topic record key of a workspace's settings kind.
func Key(workspaceID, kind string) string { return workspaceID + "/" + kind }

// SplitKey is the inverse of Key.
func SplitKey(key string) (workspaceID, kind string, ok bool) {
	i := strings.LastIndexByte(key, '/')
	if i <= 0 || i == len(key)-1 {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}
