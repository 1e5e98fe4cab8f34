package trackingplan

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// itemsPlan plans "Source Created" with an array property a whose items
// must pass n checks.
func itemsPlan(t testing.TB, n int, onViolation string) *CompiledPlan {
	s := `{"properties":{"a":{"type":"array","items":{"allOf":[` + strings.TrimSuffix(strings.Repeat(`{"minimum":0},`, n), ",") + `]}},` +
		`"tags":{"type":"array","uniqueItems":true,"items":{"type":"string","maxLength":8}},` +
		`"rows":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"},"n":{"type":"integer"},"ok":{"type":"boolean"}}}}}}`
	cp, err := Plan{OnViolation: onViolation, Events: map[string]PlanEvent{"Source Created": {Properties: json.RawMessage(s)}}}.Compile()
	require.NoError(t, err)
	return cp
}

func numbers(n int) []any {
	arr := make([]any, n)
	for i := range arr {
		arr[i] = json.Number("1")
	}
	return arr
}

// TestArrayFanOutIsBoundedPerEvent: an items schema is applied to every
// element, so a schema within MaxSchemaWork multiplies over a large array.
// Before, 60 checks over the 15,000 elements of a 30 KB array took 1.9 s
// per event (600 checks: 27 s; 4,900: 138 s). Now an event whose check
// would exceed MaxCheckWork fails the plan without being validated, and
// the ordinary arrays a 32 KiB event can hold are still checked.
func TestArrayFanOutIsBoundedPerEvent(t *testing.T) {
	cp := itemsPlan(t, 60, Block)
	start := time.Now()
	v := cp.Check("Source Created", map[string]any{"a": numbers(15000)})
	require.Less(t, time.Since(start), time.Second)
	require.True(t, v.Drop, "on_violation block drops it")
	require.Len(t, v.Violations, 1)
	require.Contains(t, v.Violations[0], "too costly to check")

	// Small arrays are validated as before, violations named.
	v = cp.Check("Source Created", map[string]any{"a": []any{json.Number("1"), json.Number("-1")}})
	require.True(t, v.Drop)
	require.NotEmpty(t, v.Violations)
	require.Equal(t, "/a/1: minimum: got -1, want 0", v.Violations[0])

	// The largest ordinary arrays of a 32 KiB event are checked.
	tags := make([]any, 3000)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	rows := make([]any, 600)
	for i := range rows {
		rows[i] = map[string]any{"id": "x", "n": json.Number("1"), "ok": true}
	}
	cp = itemsPlan(t, 1, Allow)
	v = cp.Check("Source Created", map[string]any{"a": numbers(15000)})
	require.Empty(t, v.Violations, "15,000 numbers under one check")
	v = cp.Check("Source Created", map[string]any{"tags": tags, "rows": rows})
	require.Empty(t, v.Violations)
	tags[10] = "t1"
	v = cp.Check("Source Created", map[string]any{"tags": tags, "rows": rows})
	require.Len(t, v.Violations, 1)
	require.Contains(t, v.Violations[0], "/tags: items at 1 and 10 are equal")
}

// BenchmarkArrayFanOut checks one event with a 15,000-element array against
// items schemas of n checks (before the bound: 1: 28 ms, 60: 1.9 s,
// 600: 27 s, 4,900: 138 s per event).
func BenchmarkArrayFanOut(b *testing.B) {
	for _, n := range []int{1, 60, 600, 4900} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cp := itemsPlan(b, n, Allow)
			props := map[string]any{"a": numbers(15000)}
			for b.Loop() {
				cp.Check("Source Created", props)
			}
		})
	}
}

// TestSchemasWithoutRepeatsNeedNoCount: Check skips counting for a schema
// without a keyword that applies a subschema per member or element: no
// value makes its work exceed the schema's own, which compiling bounds.
func TestSchemasWithoutRepeatsNeedNoCount(t *testing.T) {
	bounded := []string{
		`{"type": "object", "properties": {"kind": {"type": "string", "pattern": "^[a-z]+$"}, "count": {"type": "integer", "minimum": 0},
			"nested": {"properties": {"a": {"$ref": "#/$defs/n"}, "b": {"allOf": [{"$ref": "#/$defs/n"}, {"not": {"const": 3}}]}}}},
			"required": ["kind"], "$defs": {"n": {"anyOf": [{"type": "number"}, {"enum": [1, 2, "x"]}]}}}`,
		`{"if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["b"]}, "else": {"properties": {"b": {"oneOf": [{"type": "string"}, {"type": "null"}]}}},
			"dependentSchemas": {"a": {"properties": {"c": {"maxLength": 3}}}}, "properties": {"t": {"prefixItems": [{"type": "string"}, {"type": "number"}]}}}`,
		`{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"a": {"dependencies": {"x": {"required": ["y"]}}}}}`,
	}
	docs := []any{
		map[string]any{},
		map[string]any{"kind": "abc", "count": json.Number("3"), "nested": map[string]any{"a": json.Number("1"), "b": "x", "c": []any{1, 2}}},
		map[string]any{"a": json.Number("1"), "b": "s", "c": "long", "t": []any{"x", json.Number("2"), "extra", "more"},
			"nested": map[string]any{"a": map[string]any{"a": map[string]any{}}, "b": []any{map[string]any{"a": 1}}}},
		map[string]any{"a": map[string]any{"x": 1, "y": 2, "z": []any{1, 2, 3}}, "kind": strings.Repeat("a", 1000)},
	}
	for i, s := range bounded {
		cp, err := Plan{Events: map[string]PlanEvent{"E": {Properties: json.RawMessage(s)}}}.Compile()
		require.NoError(t, err, i)
		pe := cp.events["E"]
		require.True(t, pe.bounded, "schema %d has no repeating keyword", i)
		work, err := schemaWork(pe.schema)
		require.NoError(t, err)
		for j, d := range docs {
			require.LessOrEqual(t, checkWork(pe.schema, d, MaxCheckWork), work, "schema %d, doc %d", i, j)
		}
	}
	repeating := []string{
		`{"properties": {"a": {"items": {"type": "string"}}}}`,
		`{"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"additionalProperties": {"type": "string"}}}}`,
		`{"patternProperties": {"^a": {}}}`,
		`{"propertyNames": {"maxLength": 3}}`,
		`{"unevaluatedProperties": false}`,
		`{"properties": {"a": {"contains": {"const": 1}}}}`,
		`{"properties": {"a": {"uniqueItems": true}}}`,
		`{"properties": {"a": {"unevaluatedItems": false}}}`,
		`{"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"a": {"items": [{}], "additionalItems": {"type": "string"}}}}`,
		`{"not": {"anyOf": [{"properties": {"a": {"items": {}}}}]}}`,
	}
	for i, s := range repeating {
		cp, err := Plan{Events: map[string]PlanEvent{"E": {Properties: json.RawMessage(s)}}}.Compile()
		require.NoError(t, err, i)
		require.False(t, cp.events["E"].bounded, "schema %d repeats a subschema", i)
	}
}
