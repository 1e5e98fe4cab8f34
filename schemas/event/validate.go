package event

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/audittrail/audittrail/schemas/catalogue"
)

// FieldError is one problem with one field of an event. Field is a dotted
// path such as "actor.id"; it is empty when the problem is the whole body.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in one event.
type ValidationError struct {
	Fields []FieldError
	// syntax marks an error of CheckJSON that is about JSON syntax, which
	// the decoder explains better.
	syntax bool
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		if f.Field == "" {
			parts = append(parts, f.Message)
			continue
		}
		parts = append(parts, f.Field+": "+f.Message)
	}
	return "invalid event: " + strings.Join(parts, "; ")
}

// escape returns a copy of e on the heap: the functions that collect
// errors keep theirs on the stack, so an event without problems allocates
// nothing for them.
func (e *ValidationError) escape() *ValidationError {
	out := *e
	return &out
}

func (e *ValidationError) add(field, msg string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: msg})
}

func single(field, msg string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: msg}}}
}

// Limits on field sizes. The ingest gateway separately caps a whole event at
// 32 KiB.
const (
	MaxIDLen       = 128
	MaxNameLen     = 256
	MaxEmailLen    = 320
	MaxTextLen     = 1024
	MaxChanges     = 200
	MaxChangeKey   = 128
	MinYear        = 2000
	MaxFutureSkew  = 24 * time.Hour
	maxEventLength = 100
)

var (
	idPattern           = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]*$`)
	resourceTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Policy decides which events are acceptable beyond the contract's shape:
// whether names outside the catalogue ("custom events") are allowed, for the
// whole deployment or for listed workspaces. The zero Policy accepts only
// catalogue events. A Policy is safe for concurrent use once built.
type Policy struct {
	// AllowCustomEvents accepts custom event names for every workspace.
	AllowCustomEvents bool
	// CustomEventWorkspaces accepts custom event names for these workspaces.
	CustomEventWorkspaces map[string]bool
	// Now returns the current time; nil means time.Now. Timestamps more than
	// MaxFutureSkew ahead of it are rejected.
	Now func() time.Time
}

// Validate checks e against the contract and the catalogue and fills the
// derived fields: Category always, and Resource.Type when the producer left
// it empty. It returns a *ValidationError listing every problem, or nil.
// It does not assign ID or ReceivedAt; the ingest path does.
func (p Policy) Validate(e *Event) error {
	var errs ValidationError
	checkID(&errs, "id", e.ID, false)
	checkID(&errs, "workspace_id", e.WorkspaceID, true)
	p.checkName(&errs, e)
	p.checkTimestamp(&errs, e.Timestamp)

	switch e.Actor.Type {
	case ActorUser, ActorAccessToken, ActorSystem:
	case "":
		errs.add("actor.type", `is required: one of "user", "access_token", "system"`)
	default:
		errs.add("actor.type", fmt.Sprintf(`must be one of "user", "access_token", "system", got %q`, truncate(e.Actor.Type, 64)))
	}
	checkText(&errs, "actor.id", e.Actor.ID, MaxNameLen, true, identifier)
	checkText(&errs, "actor.name", e.Actor.Name, MaxNameLen, false, freeText)
	checkText(&errs, "actor.email", e.Actor.Email, MaxEmailLen, false, identifier)
	if e.Actor.Email != "" && !strings.Contains(e.Actor.Email, "@") {
		errs.add("actor.email", "must be an email address")
	}

	if e.Resource.Type != "" && (len(e.Resource.Type) > 64 || !validResourceType(e.Resource.Type)) {
		errs.add("resource.type", "must be snake_case letters, digits and underscores (at most 64), e.g. \"warehouse\"")
	}
	checkText(&errs, "resource.id", e.Resource.ID, MaxNameLen, false, identifier)
	checkText(&errs, "resource.name", e.Resource.Name, MaxNameLen, false, freeText)

	if len(e.Changes) > MaxChanges {
		errs.add("changes", fmt.Sprintf("at most %d changed fields", MaxChanges))
	}
	for k := range e.Changes {
		if k == "" || len(k) > MaxChangeKey || !utf8.ValidString(k) || hasControl(k, freeText) {
			errs.add("changes", fmt.Sprintf("field names must be 1-%d characters of valid UTF-8 without control characters other than tab, line feed and carriage return", MaxChangeKey))
			break
		}
	}

	if e.Context.IP != "" {
		if _, err := netip.ParseAddr(e.Context.IP); err != nil {
			errs.add("context.ip", "must be an IPv4 or IPv6 address")
		}
	}
	checkText(&errs, "context.user_agent", e.Context.UserAgent, MaxTextLen, false, freeText)
	checkText(&errs, "context.request_id", e.Context.RequestID, MaxNameLen, false, identifier)
	if e.Sender != (Sender{}) {
		checkText(&errs, "sender.credential_id", e.Sender.CredentialID, MaxIDLen, false, identifier)
		checkText(&errs, "sender.producer", e.Sender.Producer, MaxIDLen, false, identifier)
	}
	if len(e.Properties) > 0 && e.Properties[0] != '{' {
		errs.add("properties", "must be a JSON object")
	}

	if len(errs.Fields) > 0 {
		return errs.escape()
	}
	return nil
}

func (p Policy) checkName(errs *ValidationError, e *Event) {
	if e.Event == "" {
		errs.add("event", "is required: an event name from the catalogue, e.g. \"Source Created\"")
		return
	}
	if entry, ok := catalogue.Lookup(e.Event); ok {
		if e.Category != "" && e.Category != entry.Category {
			errs.add("category", fmt.Sprintf("is derived from the event name: %q belongs to %q, not %q", e.Event, entry.Category, truncate(e.Category, 64)))
			return
		}
		e.Category = entry.Category
		if e.Resource.Type == "" {
			e.Resource.Type = entry.ResourceType
		}
		return
	}
	if err := p.CheckName(e.WorkspaceID, e.Event); err != nil {
		errs.add("event", err.Error())
		return
	}
	if e.Category != "" && e.Category != catalogue.CustomCategory {
		errs.add("category", fmt.Sprintf("custom events belong to %q", catalogue.CustomCategory))
		return
	}
	e.Category = catalogue.CustomCategory
}

func (p Policy) checkTimestamp(errs *ValidationError, ts time.Time) {
	if ts.IsZero() {
		errs.add("timestamp", "is required: an RFC 3339 timestamp such as 2026-11-25T10:00:00Z")
		return
	}
	if ts.Year() < MinYear {
		errs.add("timestamp", fmt.Sprintf("must not be before the year %d", MinYear))
		return
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if ts.After(now().Add(MaxFutureSkew)) {
		errs.add("timestamp", fmt.Sprintf("must not be more than %s in the future", MaxFutureSkew))
	}
}

func checkID(errs *ValidationError, field, v string, required bool) {
	if v == "" {
		if required {
			errs.add(field, "is required")
		}
		return
	}
	if len(v) > MaxIDLen || !validID(v) {
		errs.add(field, fmt.Sprintf("must be 1-%d characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit", MaxIDLen))
	}
}

// validResourceType matches ^[a-z][a-z0-9_]*$ (resourceTypePattern).
func validResourceType(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !((c >= 'a' && c <= 'z') || (i > 0 && ((c >= '0' && c <= '9') || c == '_'))) {
			return false
		}
	}
	return len(v) > 0
}

// validID matches ^[A-Za-z0-9][A-Za-z0-9._:-]*$ (idPattern) without the
// regexp machinery: ids are checked for every event on every hop.
func validID(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != ':' && c != '-')) {
			return false
		}
	}
	return len(v) > 0
}

// Classes of text fields, by the control characters they accept.
type textClass bool

const (
	// freeText (names, the user agent, keys and strings inside changes
	// and properties) accepts tab, line feed and carriage return.
	freeText textClass = true
	// identifier (ids, emails, request ids) accepts no control character.
	identifier textClass = false
)

func checkText(errs *ValidationError, field, v string, max int, required bool, class textClass) {
	switch {
	case v == "" && required:
		errs.add(field, "is required")
	case len(v) > max:
		errs.add(field, fmt.Sprintf("must be at most %d bytes", max))
	case printableASCII(v):
	case !utf8.ValidString(v):
		errs.add(field, "must be valid UTF-8")
	case hasControl(v, class) && class == freeText:
		errs.add(field, "must not contain control characters other than tab, line feed and carriage return")
	case hasControl(v, class):
		errs.add(field, "must not contain control characters")
	}
}

// printableASCII reports whether s is only bytes 0x20-0x7e, eight at a
// time: text that is valid UTF-8 without control characters, the common
// case, checked in one pass.
func printableASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte is outside 0x20-0x7e when it is below 0x20, or when
		// adding 1 to it sets its high bit (0x7f and above).
		if ((x-space)&^x|x|(x+ones))&highs != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// hasControl reports whether valid UTF-8 s holds a control character its
// class refuses: C0 (below U+0020; free text accepts tab, line feed and
// carriage return), DEL (U+007F) or C1 (U+0080-U+009F). C0 and DEL are
// single bytes that never occur inside a multi-byte sequence; C1 are the
// two-byte sequences 0xC2 0x80-0x9F.
func hasControl(s string, class textClass) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\t' || c == '\n' || c == '\r':
			if class != freeText {
				return true
			}
		case c < 0x20 || c == 0x7f:
			return true
		case c == 0xc2 && i+1 < len(s) && s[i+1] <= 0x9f:
			return true
		}
	}
	return false
}
