package trackingplan

import (
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// MaxCheckWork bounds the work of checking one event's properties against
// its schema. MaxSchemaWork assumes each subschema is applied once, but
// items, additionalProperties, patternProperties and the like apply their
// subschema to every element or member: an items schema near MaxSchemaWork
// over a 30 KB array applied it to thousands of elements, seconds per event.
// Before validating, Check counts the applications the event would cause
// (every subschema applied to every value it reaches, plus pattern
// instructions, enum values and the elements compared by uniqueItems); an
// event over the bound is not validated and fails the plan. One
// application takes about 2 µs, so a check takes at most about 0.1 s.
const MaxCheckWork = 50_000

// errTooCostly is the violation of an event too costly to check.
var errTooCostly = fmt.Sprintf("/: too costly to check against the plan: the properties would apply more than %d subschemas (each subschema counts once per element or member it applies to); send fewer values or make the schema of repeated values simpler", MaxCheckWork)

// checkWork returns the work of validating v against s (see MaxCheckWork),
// counting no further once it exceeds limit. It is an upper bound: every
// branch of if/then/else, anyOf and oneOf counts, and patternProperties
// count for every member. Recursive references are refused when plans are
// compiled, so the count ends; the limit bounds its own time.
func checkWork(s *jsonschema.Schema, v any, limit int) int {
	c := workCount{limit: limit}
	c.apply(s, v)
	return c.n
}

type workCount struct {
	n, limit int
}

func (c *workCount) over() bool { return c.n > c.limit }

func (c *workCount) apply(s *jsonschema.Schema, v any) {
	if s == nil || c.over() {
		return
	}
	c.n++
	if s.Enum != nil {
		c.n += len(s.Enum.Values)
	}
	for _, sub := range []*jsonschema.Schema{s.Ref, s.Not, s.If, s.Then, s.Else, s.ContentSchema} {
		c.apply(sub, v)
	}
	for _, l := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range l {
			c.apply(sub, v)
		}
	}
	switch x := v.(type) {
	case string:
		if s.Pattern != nil {
			c.n += regexWork(s.Pattern)
		}
	case map[string]any:
		c.object(s, x)
	case []any:
		c.array(s, x)
	}
}

func (c *workCount) object(s *jsonschema.Schema, obj map[string]any) {
	for _, sub := range s.DependentSchemas {
		c.apply(sub, obj)
	}
	for _, d := range s.Dependencies {
		c.anySchema(d, obj)
	}
	for k, val := range obj {
		if c.over() {
			return
		}
		c.apply(s.Properties[k], val)
		for re, sub := range s.PatternProperties {
			c.n += regexWork(re)
			c.apply(sub, val)
		}
		c.anySchema(s.AdditionalProperties, val)
		if s.PropertyNames != nil {
			c.apply(s.PropertyNames, k)
		}
		c.apply(s.UnevaluatedProperties, val)
	}
}

func (c *workCount) array(s *jsonschema.Schema, arr []any) {
	if s.UniqueItems {
		c.n += len(arr)
	}
	for i, e := range arr {
		if c.over() {
			return
		}
		if i < len(s.PrefixItems) {
			c.apply(s.PrefixItems[i], e)
		}
		c.apply(s.Items2020, e)
		if tuple, ok := s.Items.([]*jsonschema.Schema); ok {
			if i < len(tuple) {
				c.apply(tuple[i], e)
			}
		} else {
			c.anySchema(s.Items, e)
		}
		c.anySchema(s.AdditionalItems, e)
		c.apply(s.Contains, e)
		c.apply(s.UnevaluatedItems, e)
	}
}

// anySchema applies a keyword's value when it is a schema (not a bool or
// a list of names).
func (c *workCount) anySchema(v any, val any) {
	if s, ok := v.(*jsonschema.Schema); ok {
		c.apply(s, val)
	}
}

// repeats reports whether s reaches a keyword that applies its subschema
// to every member or element of a value (items, additionalProperties,
// patternProperties, propertyNames, contains, unevaluated*, uniqueItems
// and the like). Without one, checking any value applies each subschema at
// most once per way it is reached, so its work is at most the schema's
// (schemaWork, at most MaxSchemaWork): checkWork need not run.
func repeats(s *jsonschema.Schema) bool {
	seen := map[*jsonschema.Schema]bool{}
	var walk func(s *jsonschema.Schema) bool
	walk = func(s *jsonschema.Schema) bool {
		if s == nil || seen[s] {
			return false
		}
		seen[s] = true
		if s.Items != nil || s.Items2020 != nil || s.AdditionalItems != nil || s.Contains != nil ||
			s.UnevaluatedItems != nil || s.UniqueItems || s.AdditionalProperties != nil ||
			len(s.PatternProperties) > 0 || s.PropertyNames != nil || s.UnevaluatedProperties != nil {
			return true
		}
		subs, _ := children(s)
		for _, c := range subs {
			if walk(c) {
				return true
			}
		}
		return false
	}
	return walk(s)
}
