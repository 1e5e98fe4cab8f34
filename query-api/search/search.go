// Package search parses the read API's search syntax, the q parameter.
//
// The q parameter of the audit-event endpoints takes free text plus
// qualifiers in the style of audit-log searches.
//
//	alice "Snowflake prod" event:"Source Created" actor:alice resource:wh_1
//	category:Warehouses actor_type:access_token resource_type:warehouse
//	created:>2026-11-01 created:2026-11-01..2026-11-05 -event:"Source Deleted"
//
// Terms are separated by spaces and all must match (AND).
//
//   - A bare word or a "quoted phrase" is free text: it matches when it
//     occurs, ignoring case, in the event name, the actor's id, name or
//     email, or the resource's id or name.
//   - qualifier:value narrows one field; the value is a word or a "quoted
//     phrase". event:, category:, actor_type: and resource_type: match the
//     whole value ignoring case; actor: (id, name or email) and resource:
//     (id or name) match when the value occurs in them, ignoring case.
//     Repeating a qualifier matches any of its values (OR), except created:,
//     whose ranges all apply.
//   - created: takes a date (YYYY-MM-DD, a whole UTC day) or an RFC 3339
//     timestamp, optionally after >, >=, < or <=, or a range a..b with both
//     ends included (* leaves an end open).
//   - A leading - excludes: -event:"Source Deleted", -bot.
//   - Inside quotes, \" is a quote and \\ a backslash. Quotes are special
//     only at the start of a term or of a qualifier's value.
//
// Parse reports a *SyntaxError saying what is wrong and where. Parsing is
// pure and safe for concurrent use; values are returned as typed, never as
// SQL: the store binds them as parameters.
package search

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on a search.
const (
	MaxLen   = 1024 // characters of q
	MaxTerms = 32
	// MinYear and MaxYear bound the dates of created: (nanosecond
	// timestamps cover 1678-2262).
	MinYear = 1970
	MaxYear = 2200
)

// Field is what a clause matches.
type Field string

// Fields.
const (
	Text         Field = "text"
	Event        Field = "event"
	Category     Field = "category"
	ActorType    Field = "actor_type"
	ResourceType Field = "resource_type"
	Actor        Field = "actor"
	Resource     Field = "resource"
)

// qualifiers lists the qualifier names users type, in the order error
// messages list them. created: is handled apart.
var qualifiers = []Field{Event, Actor, Resource, Category, ActorType, ResourceType}

// Exact reports whether the field matches whole values (ignoring case)
// rather than values occurring in it.
func (f Field) Exact() bool {
	switch f {
	case Event, Category, ActorType, ResourceType:
		return true
	}
	return false
}

// Clause matches events where Field matches any of Values (OR), or, when
// Negate, none of them.
type Clause struct {
	Field  Field
	Values []string
	Negate bool
}

// Query is a parsed search: every clause must hold (AND), and the event's
// timestamp must lie in [Since, Until) where those are not zero.
type Query struct {
	Clauses      []Clause
	Since, Until time.Time
}

// IsZero reports whether the query matches everything.
func (q Query) IsZero() bool {
	return len(q.Clauses) == 0 && q.Since.IsZero() && q.Until.IsZero()
}

// SyntaxError is a problem with a search, at byte offset Pos of the input.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s (at character %d)", e.Msg, e.Pos+1)
}

func errAt(pos int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses a search. The empty string (or only spaces) is the zero
// Query. Errors are *SyntaxError.
func Parse(s string) (Query, error) {
	var q Query
	if !utf8.ValidString(s) {
		return q, errAt(strings.IndexRune(s, utf8.RuneError), "search is not valid UTF-8")
	}
	if utf8.RuneCountInString(s) > MaxLen {
		return q, errAt(MaxLen, "search is longer than %d characters", MaxLen)
	}
	if i := strings.IndexFunc(s, isControl); i >= 0 {
		return q, errAt(i, "search contains a control character")
	}
	p := parser{s: s}
	positive := map[Field]int{} // field -> index of its OR clause in q.Clauses
	terms := 0
	for {
		p.skipSpace()
		if p.eof() {
			break
		}
		if terms++; terms > MaxTerms {
			return Query{}, errAt(p.i, "more than %d search terms", MaxTerms)
		}
		start := p.i
		negate := false
		if p.peek() == '-' {
			negate = true
			p.i++
			if p.eof() || p.atSpace() {
				return Query{}, errAt(start, "'-' must be followed by a word or qualifier to exclude, e.g. -event:\"Source Deleted\"")
			}
		}
		field, value, err := p.term()
		if err != nil {
			return Query{}, err
		}
		if field == "created" {
			if negate {
				return Query{}, errAt(start, "created: cannot be negated; use created:<DATE or created:>DATE")
			}
			since, until, err := parseCreated(value.s, value.pos)
			if err != nil {
				return Query{}, err
			}
			q.Since, q.Until = intersect(q.Since, q.Until, since, until)
			continue
		}
		f := Field(field)
		if f == ActorType {
			v := strings.ToLower(value.s)
			if v != "user" && v != "access_token" && v != "system" {
				return Query{}, errAt(value.pos, `actor_type: must be "user", "access_token" or "system", got %q`, trim(value.s))
			}
		}
		if negate || f == Text {
			q.Clauses = append(q.Clauses, Clause{Field: f, Values: []string{value.s}, Negate: negate})
			continue
		}
		if i, ok := positive[f]; ok {
			if !slices.Contains(q.Clauses[i].Values, value.s) {
				q.Clauses[i].Values = append(q.Clauses[i].Values, value.s)
			}
			continue
		}
		positive[f] = len(q.Clauses)
		q.Clauses = append(q.Clauses, Clause{Field: f, Values: []string{value.s}})
	}
	return q, nil
}

// isControl reports a control character a search may not hold: C0 other
// than tab, DEL and C1.
func isControl(r rune) bool { return (r < 0x20 && r != '\t') || (r >= 0x7f && r <= 0x9f) }

type parser struct {
	s string
	i int
}

type value struct {
	s   string
	pos int
}

func (p *parser) eof() bool  { return p.i >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.i] }
func (p *parser) atSpace() bool {
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return unicode.IsSpace(r)
}

func (p *parser) skipSpace() {
	for !p.eof() && p.atSpace() {
		_, n := utf8.DecodeRuneInString(p.s[p.i:])
		p.i += n
	}
}

// word reads up to the next space.
func (p *parser) word() string {
	start := p.i
	for !p.eof() && !p.atSpace() {
		_, n := utf8.DecodeRuneInString(p.s[p.i:])
		p.i += n
	}
	return p.s[start:p.i]
}

// quoted reads a "quoted phrase" starting at the opening quote.
func (p *parser) quoted() (string, error) {
	start := p.i
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.peek()
		switch {
		case c == '"':
			p.i++
			if !p.eof() && !p.atSpace() {
				return "", errAt(p.i, "a closing quote must be followed by a space or the end of the search")
			}
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s) && (p.s[p.i+1] == '"' || p.s[p.i+1] == '\\'):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errAt(start, `unterminated quote: close it with "`)
}

// term reads one term: a qualifier (field set) or free text (field Text).
func (p *parser) term() (string, value, error) {
	start := p.i
	if p.peek() == '"' {
		s, err := p.quoted()
		if err != nil {
			return "", value{}, err
		}
		v, err := checkValue(s, start)
		return string(Text), v, err
	}
	// A qualifier is letters and underscores followed by ':'.
	k := p.i
	for k < len(p.s) && (p.s[k] == '_' || ('a' <= p.s[k] && p.s[k] <= 'z') || ('A' <= p.s[k] && p.s[k] <= 'Z')) {
		k++
	}
	if k > p.i && k < len(p.s) && p.s[k] == ':' {
		name := strings.ToLower(p.s[p.i:k])
		if name != "created" && !slices.Contains(qualifiers, Field(name)) {
			return "", value{}, errAt(start, "unknown qualifier %q: use one of %s or created:; put text containing ':' in double quotes", trim(p.s[p.i:k]), qualifierList())
		}
		p.i = k + 1
		vpos := p.i
		var s string
		switch {
		case p.eof() || p.atSpace():
			return "", value{}, errAt(start, "%s: needs a value, e.g. %s", name, example(name))
		case p.peek() == '"':
			var err error
			if s, err = p.quoted(); err != nil {
				return "", value{}, err
			}
		default:
			s = p.word()
		}
		v, err := checkValue(s, vpos)
		if err != nil {
			return "", value{}, fmt.Errorf("%s: %w", name, err)
		}
		return name, v, nil
	}
	v, err := checkValue(p.word(), start)
	return string(Text), v, err
}

func checkValue(s string, pos int) (value, error) {
	if strings.TrimSpace(s) == "" {
		return value{}, errAt(pos, "empty quoted phrase")
	}
	return value{s: s, pos: pos}, nil
}

func qualifierList() string {
	names := make([]string, len(qualifiers))
	for i, f := range qualifiers {
		names[i] = string(f) + ":"
	}
	return strings.Join(names, ", ")
}

func example(name string) string {
	switch name {
	case "event":
		return `event:"Source Created"`
	case "created":
		return "created:>2026-11-01"
	case "actor_type":
		return "actor_type:access_token"
	case "category":
		return "category:Warehouses"
	case "resource_type":
		return "resource_type:warehouse"
	}
	return name + ":alice"
}

func trim(s string) string {
	if len(s) <= 40 {
		return s
	}
	for i := 40; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return "…"
}

// parseCreated turns a created: value into [since, until); zero means open.
func parseCreated(s string, pos int) (time.Time, time.Time, error) {
	var zero time.Time
	if a, b, ok := strings.Cut(s, ".."); ok {
		var since, until time.Time
		if a != "*" {
			start, _, err := parseMoment(a, pos)
			if err != nil {
				return zero, zero, err
			}
			since = start
		}
		if b != "*" {
			_, end, err := parseMoment(b, pos+len(a)+2)
			if err != nil {
				return zero, zero, err
			}
			until = end
		}
		if !since.IsZero() && !until.IsZero() && !until.After(since) {
			return zero, zero, errAt(pos, "created: range %q ends before it starts", trim(s))
		}
		return since, until, nil
	}
	op := ""
	for _, o := range []string{">=", "<=", ">", "<"} {
		if strings.HasPrefix(s, o) {
			op, s, pos = o, s[len(o):], pos+len(o)
			break
		}
	}
	start, end, err := parseMoment(s, pos)
	if err != nil {
		return zero, zero, err
	}
	switch op {
	case ">":
		return end, zero, nil
	case ">=":
		return start, zero, nil
	case "<":
		return zero, start, nil
	case "<=":
		return zero, end, nil
	}
	return start, end, nil
}

// parseMoment parses a date (the whole UTC day) or an RFC 3339 timestamp
// (one instant) into [start, end).
func parseMoment(s string, pos int) (time.Time, time.Time, error) {
	var start, end time.Time
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		start, end = d, d.AddDate(0, 0, 1)
	} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		start = t.UTC()
		end = start.Add(time.Nanosecond)
	} else {
		return start, end, errAt(pos, "created: want a date such as 2026-11-01 or an RFC 3339 timestamp such as 2026-11-01T10:00:00Z, optionally after >, >=, <, <= or as a range a..b, got %q", trim(s))
	}
	if start.Year() < MinYear || end.Year() > MaxYear {
		return start, end, errAt(pos, "created: years %d to %d only, got %q", MinYear, MaxYear, trim(s))
	}
	return start, end, nil
}

// intersect narrows [since, until) by [s2, u2); zero ends are open.
func intersect(since, until, s2, u2 time.Time) (time.Time, time.Time) {
	if !s2.IsZero() && (since.IsZero() || s2.After(since)) {
		since = s2
	}
	if !u2.IsZero() && (until.IsZero() || u2.Before(until)) {
		until = u2
	}
	return since, until
}

// String formats q in the search syntax; Parse(q.String()) gives back an
// equal Query.
func (q Query) String() string {
	var parts []string
	for _, c := range q.Clauses {
		for _, v := range c.Values {
			var p string
			if c.Field == Text {
				// A bare word with ':' would read as a qualifier, one
				// starting with '-' as an exclusion.
				p = quote(v, strings.Contains(v, ":") || strings.HasPrefix(v, "-"))
			} else {
				p = string(c.Field) + ":" + quote(v, false)
			}
			if c.Negate {
				p = "-" + p
			}
			parts = append(parts, p)
		}
	}
	if !q.Since.IsZero() {
		parts = append(parts, "created:>="+q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		parts = append(parts, "created:<"+q.Until.UTC().Format(time.RFC3339Nano))
	}
	return strings.Join(parts, " ")
}

func quote(v string, force bool) string {
	if !force && v != "" && !strings.ContainsFunc(v, unicode.IsSpace) && v[0] != '"' {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}
