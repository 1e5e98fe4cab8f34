package event

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf8"
	"unsafe"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/jsonlimit"
)

// fastDecode decodes the common shape of an event - the one Encode
// produces: known fields once each, strings without escape sequences,
// changes as {"field": {"old": ..., "new": ...}}, properties an object - in
// one pass without reflection, checking the bounds of jsonlimit on the way.
// It returns ok=false for anything else (escapes outside changes and
// properties, nulls, repeated or unknown keys, other types, invalid JSON,
// broken bounds),
// and the caller decodes with the general decoder, which decides and
// explains. Where it returns ok=true, the result equals the general
// decoder's (FuzzFastDecodeMatchesDecode).
//
// Strings and raw JSON share memory with data, as with Decode.
//
// With compact set, changes already in the form AppendChanges writes are
// kept as their JSON in w.ChangesJSON instead of a map (see
// compactChanges); other changes are read into the map as without it.
//
// It is longer than our 80-line rule on purpose: one loop over the keys,
// with the read position and the field switch in one frame, keeps the hot
// path free of a call per field; FuzzFastDecodeMatchesDecode holds it to
// the general decoder.
func fastDecode(data []byte, compact bool) (w wire, ok bool) {
	s := scanner{b: data}
	if !s.ws() || !s.byte('{') {
		return w, false
	}
	var seen uint16
	if !s.ws() {
		return w, false
	}
	if s.peek('}') {
		s.i++
	} else {
		for {
			key, ok := s.key()
			if !ok {
				return w, false
			}
			bit, ok := topField(key)
			if !ok || seen&bit != 0 {
				return w, false
			}
			seen |= bit
			switch bit {
			case fID:
				w.ID, ok = s.str()
			case fWorkspaceID:
				w.WorkspaceID, ok = s.str()
			case fEvent:
				w.Event, ok = s.str()
			case fCategory:
				w.Category, ok = s.str()
			case fTimestamp:
				w.Timestamp, ok = s.str()
			case fReceivedAt:
				w.ReceivedAt, ok = s.str()
			case fActor:
				ok = s.object(func(k string) bool {
					switch k {
					case "type":
						return s.once(&w.Actor.Type)
					case "id":
						return s.once(&w.Actor.ID)
					case "name":
						return s.once(&w.Actor.Name)
					case "email":
						return s.once(&w.Actor.Email)
					}
					return false
				})
			case fResource:
				ok = s.object(func(k string) bool {
					switch k {
					case "type":
						return s.once(&w.Resource.Type)
					case "id":
						return s.once(&w.Resource.ID)
					case "name":
						return s.once(&w.Resource.Name)
					}
					return false
				})
			case fContext:
				ok = s.object(func(k string) bool {
					switch k {
					case "ip":
						return s.once(&w.Context.IP)
					case "user_agent":
						return s.once(&w.Context.UserAgent)
					case "request_id":
						return s.once(&w.Context.RequestID)
					}
					return false
				})
			case fSender:
				ok = s.object(func(k string) bool {
					switch k {
					case "credential_id":
						return s.once(&w.Sender.CredentialID)
					case "producer":
						return s.once(&w.Sender.Producer)
					}
					return false
				})
			case fChanges:
				if compact {
					start := s.i
					if w.ChangesJSON, ok = s.compactChanges(); ok {
						break
					}
					s.i = start
				}
				w.Changes = map[string]Change{}
				ok = s.object(func(k string) bool {
					// More changes than Validate takes are left to the
					// general decoder, which also counts the keys.
					if _, dup := w.Changes[k]; dup || len(w.Changes) >= MaxChanges {
						return false
					}
					var c Change
					if !s.object(func(ck string) bool {
						var dst *json.RawMessage
						switch {
						case ck == "old" && c.Old == nil:
							dst = &c.Old
						case ck == "new" && c.New == nil:
							dst = &c.New
						default:
							return false
						}
						raw, ok := s.raw(depthChange)
						*dst = raw
						return ok
					}) {
						return false
					}
					w.Changes[k] = c
					return true
				})
			case fProperties:
				if !s.peek('{') {
					return w, false
				}
				w.Properties, ok = s.raw(1)
			}
			if !ok || !s.ws() {
				return w, false
			}
			if s.peek(',') {
				s.i++
				if !s.ws() {
					return w, false
				}
				continue
			}
			if !s.byte('}') {
				return w, false
			}
			break
		}
	}
	s.ws()
	return w, s.i == len(s.b)
}

const (
	fID uint16 = 1 << iota
	fWorkspaceID
	fEvent
	fCategory
	fTimestamp
	fReceivedAt
	fActor
	fResource
	fChanges
	fContext
	fSender
	fProperties
)

func topField(k string) (uint16, bool) {
	switch k {
	case "id":
		return fID, true
	case "workspace_id":
		return fWorkspaceID, true
	case "event":
		return fEvent, true
	case "category":
		return fCategory, true
	case "timestamp":
		return fTimestamp, true
	case "received_at":
		return fReceivedAt, true
	case "actor":
		return fActor, true
	case "resource":
		return fResource, true
	case "changes":
		return fChanges, true
	case "context":
		return fContext, true
	case "sender":
		return fSender, true
	case "properties":
		return fProperties, true
	}
	return 0, false
}

// scanner reads JSON from b at i. Its methods return false for anything
// the fast path does not take.
type scanner struct {
	b []byte
	i int
}

// ws skips whitespace and reports whether input remains.
func (s *scanner) ws() bool {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return true
		}
	}
	return false
}

func (s *scanner) peek(c byte) bool { return s.i < len(s.b) && s.b[s.i] == c }

func (s *scanner) byte(c byte) bool {
	if s.peek(c) {
		s.i++
		return true
	}
	return false
}

// str reads a string without escape sequences or control characters (C0,
// DEL or C1) in valid UTF-8, sharing memory with the input. It looks for
// the closing quote, a backslash, a control character and a non-ASCII byte
// in one pass, eight bytes at a time; from a non-ASCII byte on, textEnd
// reads the rest.
func (s *scanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	b := s.b[s.i:]
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if m := jsonlimit.Specials(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			i += bits.TrailingZeros64(m) / 8
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c >= 0x7f || c == '\\' || c == '"' {
			break
		}
	}
	if i < len(b) && b[i] >= 0x80 {
		i = textEnd(b, i)
	}
	if i == len(b) || b[i] != '"' {
		return "", false
	}
	s.i += i + 1
	if i == 0 {
		return "", true
	}
	return unsafe.String(&b[0], i), true
}

// textEnd reads on from b[i] to the first byte that ends the fast path's
// string (a quote, backslash or control character) and returns its index,
// or the index of a C1 control or invalid UTF-8, which is not a quote.
func textEnd(b []byte, i int) int {
	for i < len(b) {
		switch c := b[i]; {
		case c < 0x20 || c == '\\' || c == '"' || c == 0x7f:
			return i
		case c < 0x80:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r <= 0x9f || (r == utf8.RuneError && size == 1) {
				return i
			}
			i += size
		}
	}
	return i
}

// SWAR constants: a byte's value in every byte (validate.go's printable
// ASCII check).
const (
	ones  = 0x0101010101010101
	highs = 0x80 * ones
	space = 0x20 * ones
)

// key reads an object key and the colon after it.
func (s *scanner) key() (string, bool) {
	k, ok := s.str()
	if !ok || !s.ws() || !s.byte(':') || !s.ws() {
		return "", false
	}
	return k, true
}

// object reads an object, calling field for each key with the scanner at
// its value (after which field must have read the value).
func (s *scanner) object(field func(key string) bool) bool {
	if !s.byte('{') || !s.ws() {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		k, ok := s.key()
		if !ok || !field(k) || !s.ws() {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') || !s.ws() {
			return false
		}
	}
}

// once reads a non-empty string into *dst, which must still be empty: a
// repeated key (or an empty value, which could hide one) is not taken.
func (s *scanner) once(dst *string) bool {
	if *dst != "" {
		return false
	}
	v, ok := s.str()
	if !ok || v == "" {
		return false
	}
	*dst = v
	return true
}

// Depth of the old and new values of a change: inside the event, changes
// and the change.
const depthChange = 3

// raw reads one JSON value of any type, nested inside depth objects, and
// returns its bytes. The value must obey the bounds of jsonlimit; the
// general decoder explains what breaks them.
func (s *scanner) raw(depth int) (json.RawMessage, bool) {
	start := s.i
	if !s.value(depth) {
		return nil, false
	}
	return json.RawMessage(s.b[start:s.i]), true
}

// value reads one JSON value as raw does.
func (s *scanner) value(depth int) bool {
	n, err := jsonlimit.Value(s.b[s.i:], depth)
	if err != nil {
		return false
	}
	s.i += n
	return true
}

func (s *scanner) literal(l string) bool {
	if len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		return false
	}
	s.i += len(l)
	return true
}

// compactChanges reads a changes object that is exactly what AppendChanges
// writes for the map it decodes to, and that Policy.Validate accepts: at
// most MaxChanges keys, each 1-MaxChangeKey bytes of printable ASCII
// without quote or backslash, in strictly ascending byte order; each value
// an object holding "old", "new", both in that order, or neither; no space
// outside the old and new values. It returns the object's bytes, sharing
// memory with the input, or false for anything else, with the scanner
// anywhere.
func (s *scanner) compactChanges() (json.RawMessage, bool) {
	start := s.i
	if !s.byte('{') {
		return nil, false
	}
	if s.byte('}') {
		return s.b[start:s.i], true
	}
	var prev string
	for n := 1; ; n++ {
		k, ok := s.str()
		// k <= prev: keys strictly ascending (prev starts empty, k is not).
		if !ok || k == "" || len(k) > MaxChangeKey || n > MaxChanges || k <= prev || !plainKey(k) ||
			!s.byte(':') || !s.byte('{') {
			return nil, false
		}
		prev = k
		if s.literal(`"old":`) {
			if !s.value(depthChange) || (s.byte(',') && !(s.literal(`"new":`) && s.value(depthChange))) {
				return nil, false
			}
		} else if s.literal(`"new":`) && !s.value(depthChange) {
			return nil, false
		}
		if !s.byte('}') {
			return nil, false
		}
		if s.byte('}') {
			return s.b[start:s.i], true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// AppendChanges appends the JSON of changes as Encode writes it (keys
// sorted, compact), or "{}" when there are none.
func AppendChanges(dst []byte, changes map[string]Change) ([]byte, error) {
	if len(changes) == 0 {
		return append(dst, "{}"...), nil
	}
	keys := make([]string, 0, len(changes))
	for k, c := range changes {
		if !plainKey(k) || !plainRaw(c.Old) || !plainRaw(c.New) {
			return json.Append(dst, changes, json.SortMapKeys)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, `":{`...)
		c := changes[k]
		if len(c.Old) > 0 {
			dst = append(dst, `"old":`...)
			dst = append(dst, c.Old...)
		}
		if len(c.New) > 0 {
			if len(c.Old) > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `"new":`...)
			dst = append(dst, c.New...)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), nil
}

// plainKey reports whether k encodes as itself between quotes.
func plainKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// plainRaw reports whether a raw value is written as it is: absent, or one
// valid JSON value without surrounding space.
func plainRaw(v json.RawMessage) bool {
	if len(v) == 0 {
		return true
	}
	n, err := jsonlimit.Value(v, depthChange)
	return err == nil && n == len(v)
}
