package trackingplan

// A shortcut for the common case of checking events against their plan: a
// conforming value of a simple schema. The validator (santhosh-tekuri/
// jsonschema) costs a few microseconds and dozens of allocations per
// event, most of them to find that the value conforms.

import (
	"encoding/json"
	"strconv"
)

// quickSchema is a schema that uses only keywords whose check is simple:
// type, properties, required, integer minimum and maximum, and the
// annotations title and description. quickValid tells whether a value
// surely conforms; when it cannot tell, or the value does not conform, the
// validator checks it (and names the violations).
type quickSchema struct {
	types    uint8 // typeString | ...; 0: any type
	props    map[string]*quickSchema
	required []string
	min, max *int64
}

const (
	typeString uint8 = 1 << iota
	typeNumber
	typeInteger
	typeBoolean
	typeNull
	typeObject
	typeArray
)

var typeBits = map[string]uint8{"string": typeString, "number": typeNumber, "integer": typeInteger,
	"boolean": typeBoolean, "null": typeNull, "object": typeObject, "array": typeArray}

// quickOf returns the quick form of a schema document (as the compiler
// read it: numbers are json.Number), or nil when it uses anything else.
func quickOf(doc any) *quickSchema {
	if b, ok := doc.(bool); ok {
		if b {
			return &quickSchema{}
		}
		return nil
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	q := &quickSchema{}
	for k, v := range m {
		ok := true
		switch k {
		case "title", "description":
		case "type":
			q.types, ok = typesOf(v)
		case "properties":
			q.props, ok = propsOf(v)
		case "required":
			q.required, ok = namesOf(v)
		case "minimum":
			q.min, ok = intOf(v)
		case "maximum":
			q.max, ok = intOf(v)
		default:
			ok = false
		}
		if !ok {
			return nil
		}
	}
	return q
}

func typesOf(v any) (uint8, bool) {
	if s, ok := v.(string); ok {
		t := typeBits[s]
		return t, t != 0
	}
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return 0, false
	}
	var ts uint8
	for _, e := range l {
		s, _ := e.(string)
		t := typeBits[s]
		if t == 0 {
			return 0, false
		}
		ts |= t
	}
	return ts, true
}

func propsOf(v any) (map[string]*quickSchema, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	props := make(map[string]*quickSchema, len(m))
	for k, s := range m {
		if props[k] = quickOf(s); props[k] == nil {
			return nil, false
		}
	}
	return props, true
}

func namesOf(v any) ([]string, bool) {
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	names := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		names = append(names, s)
	}
	return names, true
}

// intOf reads a bound written as a plain integer.
func intOf(v any) (*int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, false
	}
	i, ok := plainInt(string(n))
	return &i, ok
}

// plainInt parses an integer written with digits only (and a leading
// minus), of at most 18 digits: exact as an int64.
func plainInt(s string) (int64, bool) {
	d := s
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// valid reports whether v surely conforms to q; false means "not known".
// Values are decoded JSON with numbers as json.Number.
func (q *quickSchema) valid(v any) bool {
	var t uint8
	switch x := v.(type) {
	case string:
		t = typeString
	case bool:
		t = typeBoolean
	case nil:
		t = typeNull
	case json.Number:
		return q.validNumber(x)
	case []any:
		t = typeArray
	case map[string]any:
		if q.types != 0 && q.types&typeObject == 0 {
			return false
		}
		return q.validObject(x)
	default:
		return false
	}
	return q.types == 0 || q.types&t != 0
}

func (q *quickSchema) validNumber(n json.Number) bool {
	if q.types != 0 && q.types&(typeNumber|typeInteger) == 0 {
		return false
	}
	onlyInt := q.types != 0 && q.types&typeNumber == 0
	if !onlyInt && q.min == nil && q.max == nil {
		return true
	}
	// An integer type or bounds: known for plain integers only.
	i, ok := plainInt(string(n))
	if !ok {
		return false
	}
	return (q.min == nil || i >= *q.min) && (q.max == nil || i <= *q.max)
}

func (q *quickSchema) validObject(m map[string]any) bool {
	for _, k := range q.required {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	for k, s := range q.props {
		if v, ok := m[k]; ok && !s.valid(v) {
			return false
		}
	}
	return true
}
