package trackingplan

import (
	"encoding/json"
	"testing"

	segjson "github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
)

// quickSchemas use only the keywords the quick form knows.
var quickSchemas = []string{
	`{"type": "object", "properties": {"kind": {"type": "string"}, "count": {"type": "integer", "minimum": 0}, "region": {"type": "string"}, "debug": {}}, "required": ["kind"]}`,
	`{"properties": {"n": {"type": ["integer", "null"], "minimum": -5, "maximum": 5}, "x": {"type": "number", "maximum": 10},
		"o": {"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "boolean"}, "b": true}}, "l": {"type": "array"}}, "title": "t", "description": "d"}`,
	`true`,
	`{"type": ["object"], "properties": {"big": {"type": "integer"}, "any": {}, "nums": {"type": "number", "minimum": 3}}}`,
}

// quickDocs are property objects as the forwarder decodes them.
var quickDocs = []string{
	`{}`, `{"kind": "x"}`, `{"kind": 1}`, `{"kind": "x", "count": 3, "region": "eu", "debug": {"a": [1]}}`,
	`{"kind": "x", "count": -1}`, `{"kind": "x", "count": 1.0}`, `{"kind": "x", "count": 1.5}`, `{"kind": "x", "count": 1e2}`,
	`{"kind": "x", "count": 123456789012345678901234567890}`, `{"kind": "x", "count": -0}`, `{"kind": null}`,
	`{"n": null}`, `{"n": 5}`, `{"n": 6}`, `{"n": -5}`, `{"n": -6}`, `{"n": "5"}`, `{"n": 2.0}`,
	`{"x": 10}`, `{"x": 10.5}`, `{"x": 1e1}`, `{"x": -1e400}`, `{"x": "1"}`,
	`{"o": {"a": true, "b": [1]}}`, `{"o": {"a": true}}`, `{"o": {"a": 1, "b": 2}}`, `{"o": []}`, `{"o": null}`,
	`{"l": []}`, `{"l": {}}`, `{"big": 99999999999999999999}`, `{"big": 1}`, `{"nums": 3}`, `{"nums": 2.9999}`, `{"nums": 3.5}`,
}

func decodeDoc(t testing.TB, s string) map[string]any {
	m := map[string]any{}
	_, err := segjson.Parse([]byte(s), &m, segjson.UseNumber)
	require.NoError(t, err, s)
	return m
}

// TestQuickCheckAgreesWithTheValidator: with the quick form, Check gives
// every document the verdict of the validator alone.
func TestQuickCheckAgreesWithTheValidator(t *testing.T) {
	quick := 0
	for i, s := range quickSchemas {
		cp, err := Plan{Events: map[string]PlanEvent{"E": {Properties: json.RawMessage(s)}}}.Compile()
		require.NoError(t, err, i)
		pe := cp.events["E"]
		require.NotNil(t, pe.quick, "schema %d has a quick form", i)
		slow := *pe
		slow.quick = nil
		for _, d := range quickDocs {
			doc := decodeDoc(t, d)
			require.Equal(t, slow.violations(doc), pe.violations(doc), "schema %d, %s", i, d)
			if pe.quick.valid(doc) {
				quick++
			}
		}
	}
	require.Greater(t, quick, 40, "the quick form decides most conforming documents")
}

func TestQuickFormOnlyForSimpleKeywords(t *testing.T) {
	for _, s := range []string{
		`{"enum": [1]}`, `{"const": 1}`, `{"properties": {"a": {"pattern": "^a"}}}`, `{"properties": {"a": {"minLength": 1}}}`,
		`{"additionalProperties": false}`, `{"$schema": "http://json-schema.org/draft-07/schema#"}`, `{"minimum": 1.5}`,
		`{"exclusiveMinimum": 1}`, `{"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {}}}`, `{"format": "email"}`,
		`{"properties": {"a": false}}`, `{"type": "object", "not": {}}`, `{"minimum": 1234567890123456789012}`,
	} {
		cp, err := Plan{Events: map[string]PlanEvent{"E": {Properties: json.RawMessage(s)}}}.Compile()
		require.NoError(t, err, s)
		require.Nil(t, cp.events["E"].quick, s)
	}
}

func FuzzQuickCheckAgreesWithTheValidator(f *testing.F) {
	for _, d := range quickDocs {
		f.Add(uint8(0), d)
	}
	var pes []*plannedEvent
	for _, s := range quickSchemas {
		cp, err := Plan{Events: map[string]PlanEvent{"E": {Properties: json.RawMessage(s)}}}.Compile()
		require.NoError(f, err)
		pes = append(pes, cp.events["E"])
	}
	f.Fuzz(func(t *testing.T, which uint8, d string) {
		doc := map[string]any{}
		if _, err := segjson.Parse([]byte(d), &doc, segjson.UseNumber); err != nil {
			return
		}
		pe := pes[int(which)%len(pes)]
		slow := *pe
		slow.quick = nil
		require.Equal(t, slow.violations(doc), pe.violations(doc))
	})
}
