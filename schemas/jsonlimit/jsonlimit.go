// Package jsonlimit checks JSON from outside against the contract's bounds,
// in one pass.
//
// The bounds every document of the contract obeys are: strict RFC 8259
// syntax, at most MaxDepth nested objects and arrays, at most MaxKeys keys
// in one object, no key twice in one object, and no control character in any
// string or key other than tab, line feed and carriage return (NUL, the
// other C0 controls U+0000-U+001F, DEL and the C1 controls U+0080-U+009F are
// refused, raw or escaped), and valid UTF-8.
//
// The event codec (schemas/event), the tracking-plan settings
// (schemas/trackingplan) and the readers of stored values use it, so a
// document that one of them accepts is accepted by all.
//
// The functions allocate nothing for documents without escaped keys and
// objects of at most 32 keys, and are safe for concurrent use.
package jsonlimit

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// The bounds.
const (
	// MaxDepth is how many objects and arrays may nest, counting the
	// outermost: {"a":{"b":1}} is 2 deep.
	MaxDepth = 32
	// MaxKeys is how many keys one object may hold.
	MaxKeys = 1000
)

// Kinds of Error.
const (
	// Syntax: the input is not JSON (or not UTF-8).
	Syntax Kind = iota + 1
	// Limit: the input is JSON but breaks a bound (depth, keys,
	// duplicate key, control character).
	Limit
)

// Kind tells a syntax error from a broken bound.
type Kind int

// Error is the first place where a document breaks a rule.
type Error struct {
	Kind Kind
	// Path names the value: keys joined with ".", array elements as
	// "[i]", e.g. "properties.items[2].name"; empty for the document
	// itself. A key is shortened to 64 bytes.
	Path string
	// Message says what is wrong, e.g. "duplicate key".
	Message string
	// Offset is the byte offset in the input where the problem was found.
	Offset int
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Check reads data as one JSON document, with optional whitespace around
// it, and returns nil or an *Error for the first rule it breaks.
func Check(data []byte) error {
	s := scanner{b: data}
	s.ws()
	if err := s.value(0); err != nil {
		return err.build()
	}
	s.ws()
	if s.i != len(s.b) {
		return s.fail(Syntax, "unexpected data after the JSON value").build()
	}
	return nil
}

// Value reads one JSON value at the start of data (no leading whitespace),
// nested inside depth objects or arrays, and returns its length, or an
// *Error for the first rule it breaks, with a Path relative to the value.
func Value(data []byte, depth int) (int, error) {
	s := scanner{b: data}
	if err := s.value(depth); err != nil {
		return s.i, err.build()
	}
	return s.i, nil
}

// Valid reports whether data, nested inside depth objects or arrays, is one
// JSON value that obeys the rules (Value without the error).
func Valid(data []byte, depth int) bool {
	s := scanner{b: data}
	s.ws()
	if s.value(depth) != nil {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// failure is an Error being built: the path grows (in reverse) as the
// scan unwinds.
type failure struct {
	kind    Kind
	msg     string
	offset  int
	reverse []string
}

func (f *failure) in(segment string) *failure {
	f.reverse = append(f.reverse, segment)
	return f
}

func (f *failure) build() *Error {
	var b strings.Builder
	for i := len(f.reverse) - 1; i >= 0; i-- {
		seg := f.reverse[i]
		if b.Len() > 0 && seg[0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return &Error{Kind: f.kind, Path: b.String(), Message: f.msg, Offset: f.offset}
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) fail(kind Kind, msg string) *failure {
	return &failure{kind: kind, msg: msg, offset: s.i}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value reads one value nested inside depth containers.
func (s *scanner) value(depth int) *failure {
	if s.i >= len(s.b) {
		return s.fail(Syntax, "unexpected end of JSON input")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, f := s.str()
		return f
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return s.fail(Syntax, fmt.Sprintf("invalid character %s looking for a value", quoteByte(s.b[s.i])))
}

func (s *scanner) tooDeep(depth int) *failure {
	if depth > MaxDepth {
		return s.fail(Limit, fmt.Sprintf("nested more than %d levels deep", MaxDepth))
	}
	return nil
}

func (s *scanner) object(depth int) *failure {
	if f := s.tooDeep(depth); f != nil {
		return f
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	// The first keys are compared one by one; a map takes over for
	// objects of more.
	var few [linearKeys]string
	var index map[string]struct{}
	for n := 1; ; n++ {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return s.fail(Syntax, "expected a string key")
		}
		raw, escaped, f := s.str()
		if f != nil {
			return f
		}
		key := raw
		if escaped {
			key = unescape(raw)
		}
		if n > MaxKeys {
			return s.fail(Limit, fmt.Sprintf("more than %d keys in one object", MaxKeys))
		}
		if dup := seen(key, few[:min(n-1, linearKeys)], &index); dup {
			f := s.fail(Limit, "duplicate key")
			return f.in(segment(key))
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return s.fail(Syntax, "expected ':' after an object key")
		}
		s.i++
		s.ws()
		if n <= linearKeys {
			few[n-1] = key
		}
		if f := s.value(depth); f != nil {
			return f.in(segment(key))
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return nil
		}
		if s.i >= len(s.b) || s.b[s.i] != ',' {
			return s.fail(Syntax, "expected ',' or '}' after an object value")
		}
		s.i++
		s.ws()
	}
}

// linearKeys is how many keys an object holds before duplicates are found
// with a map instead of comparing with every earlier key.
const linearKeys = 16

// seen reports whether key is among the earlier keys of an object: the
// first ones in few, the rest (once there are more than linearKeys) in
// *index, which it creates and fills.
func seen(key string, few []string, index *map[string]struct{}) bool {
	if *index == nil {
		for _, k := range few {
			if k == key {
				return true
			}
		}
		if len(few) < linearKeys {
			return false
		}
		*index = make(map[string]struct{}, 2*linearKeys)
		for _, k := range few {
			(*index)[k] = struct{}{}
		}
	}
	if _, ok := (*index)[key]; ok {
		return true
	}
	(*index)[key] = struct{}{}
	return false
}

func (s *scanner) array(depth int) *failure {
	if f := s.tooDeep(depth); f != nil {
		return f
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for n := 0; ; n++ {
		if f := s.value(depth); f != nil {
			return f.in("[" + strconv.Itoa(n) + "]")
		}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return nil
		}
		if s.i >= len(s.b) || s.b[s.i] != ',' {
			return s.fail(Syntax, "expected ',' or ']' after an array element")
		}
		s.i++
		s.ws()
	}
}

// str reads a string at s.i (at its opening quote) and returns its raw
// contents (between the quotes, escapes as written) and whether it holds
// escape sequences.
func (s *scanner) str() (raw string, escaped bool, f *failure) {
	s.i++ // '"'
	start := s.i
	b := s.b
	for {
		for s.i+8 <= len(b) {
			m := Specials(binary.LittleEndian.Uint64(b[s.i:]))
			if m != 0 {
				s.i += bits.TrailingZeros64(m) / 8
				break
			}
			s.i += 8
		}
		if s.i >= len(b) {
			return "", false, s.fail(Syntax, "unexpected end of JSON input in a string")
		}
		switch c := b[s.i]; {
		case c == '"':
			if s.i > start {
				// Shares memory with the input: keys are kept only
				// while the input is being read.
				raw = unsafe.String(&b[start], s.i-start)
			}
			s.i++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if f := s.escape(); f != nil {
				return "", false, f
			}
		case c < 0x20:
			if c == '\t' || c == '\n' || c == '\r' {
				return "", false, s.fail(Syntax, "a tab or line break in a string must be escaped (\\t, \\n, \\r)")
			}
			return "", false, s.control(rune(c))
		case c == 0x7f:
			return "", false, s.control(0x7f)
		case c >= 0x80:
			r, size := utf8.DecodeRune(b[s.i:])
			if r == utf8.RuneError && size <= 1 {
				return "", false, s.fail(Syntax, "invalid UTF-8 in a string")
			}
			if r <= 0x9f {
				return "", false, s.control(r)
			}
			s.i += size
		default:
			s.i++
		}
	}
}

func (s *scanner) control(r rune) *failure {
	return s.fail(Limit, fmt.Sprintf("control character U+%04X is not allowed (only tab, line feed and carriage return are)", r))
}

// escape reads one escape sequence at s.i (at its backslash).
func (s *scanner) escape() *failure {
	if s.i+1 >= len(s.b) {
		return s.fail(Syntax, "unexpected end of JSON input in a string")
	}
	switch c := s.b[s.i+1]; c {
	case '"', '\\', '/', 't', 'n', 'r':
		s.i += 2
		return nil
	case 'b':
		return s.control(0x08)
	case 'f':
		return s.control(0x0c)
	case 'u':
		if s.i+6 > len(s.b) {
			return s.fail(Syntax, "unexpected end of JSON input in a string")
		}
		r, ok := hex4(s.b[s.i+2 : s.i+6])
		if !ok {
			return s.fail(Syntax, "invalid \\u escape in a string")
		}
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return s.control(r)
		}
		s.i += 6
		return nil
	}
	return s.fail(Syntax, fmt.Sprintf("invalid escape %s in a string", quoteByte(s.b[s.i+1])))
}

func (s *scanner) literal(l string) *failure {
	if len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		return s.fail(Syntax, fmt.Sprintf("invalid literal, expected %s", l))
	}
	s.i += len(l)
	return nil
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() *failure {
	bad := func() *failure { return s.fail(Syntax, "invalid number") }
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return bad()
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return bad()
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return bad()
		}
	}
	return nil
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// segment is a key as a path segment, shortened to 64 bytes.
func segment(key string) string {
	if key == "" {
		return `""`
	}
	if len(key) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(key[cut]) {
			cut--
		}
		return key[:cut] + "..."
	}
	return key
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("0x%02x", c)
}
