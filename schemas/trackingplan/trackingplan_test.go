package trackingplan

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func props(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, Decode([]byte(s), &m))
	return m
}

func TestPlanBlocksOmitsAndReportsViolations(t *testing.T) {
	var p Plan
	require.NoError(t, Decode([]byte(`{
		"events": {"Source Created": {"properties": {"type": "object",
			"properties": {"kind": {"type": "string"}, "count": {"type": "integer", "maximum": 10}},
			"required": ["kind"]}}},
		"unplanned_events": "block", "unplanned_properties": "omit", "on_violation": "block"}`), &p))
	cp, err := p.Compile()
	require.NoError(t, err)

	v := cp.Check("Source Deleted", nil)
	require.True(t, v.Drop)
	require.True(t, v.Unplanned)

	pr := props(t, `{"kind": "http", "count": 3, "extra": 1, "other": "x"}`)
	v = cp.Check("Source Created", pr)
	require.False(t, v.Drop)
	require.Empty(t, v.Violations)
	require.Equal(t, []string{"extra", "other"}, v.Omitted)
	require.Equal(t, map[string]any{"kind": "http", "count": json.Number("3")}, pr)

	v = cp.Check("Source Created", props(t, `{"count": 11}`))
	require.True(t, v.Drop)
	require.Len(t, v.Violations, 2, "missing kind and count above maximum: %v", v.Violations)

	p.OnViolation = Allow
	cp, err = p.Compile()
	require.NoError(t, err)
	v = cp.Check("Source Created", props(t, `{"count": 11}`))
	require.False(t, v.Drop)
	require.NotEmpty(t, v.Violations)

	var nilPlan *CompiledPlan
	require.Equal(t, Verdict{}, nilPlan.Check("Anything", nil))
}

func TestPlanErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		`{"events": {"Source Created": {"properties": {"type": "nonsense"}}}}`:           "events.Source Created.properties",
		`{"events": {"Source Created": {"properties": {"$ref": "file:///etc/passwd"}}}}`: "events.Source Created.properties",
		`{"events": {"Source Created": {"properties": 3}}}`:                              "events.Source Created.properties",
		`{"unplanned_events": "maybe"}`:                                                  "unplanned_events",
		`{"unplanned_properties": "block"}`:                                              "unplanned_properties",
		`{"on_violation": "omit"}`:                                                       "on_violation",
	}
	for doc, field := range cases {
		var p Plan
		require.NoError(t, Decode([]byte(doc), &p), doc)
		_, err := p.Compile()
		var fe *FieldError
		require.ErrorAs(t, err, &fe, doc)
		require.Equal(t, field, fe.Field, doc)
	}
	var p Plan
	var fe *FieldError
	require.ErrorAs(t, Decode([]byte(`{"events": {}, "typo": 1}`), &p), &fe)
	require.Equal(t, "typo", fe.Field)
	require.ErrorAs(t, Decode([]byte(`{"events": []}`), &p), &fe)
	require.Equal(t, "events", fe.Field)
}

func TestFiltersDropSampleAndEditProperties(t *testing.T) {
	var f Filters
	require.NoError(t, Decode([]byte(`{"filters": [
		{"name": "no tokens", "enabled": true, "if": "actor.type == 'access_token'", "action": "drop"},
		{"name": "off", "enabled": false, "if": "true", "action": "drop"},
		{"name": "secrets", "enabled": true, "if": "has(properties.secret)", "action": "drop_properties", "properties": ["secret", "nested.pw"]},
		{"name": "warehouses only kind", "enabled": true, "if": "category == 'Warehouses'", "action": "allow_properties", "properties": ["kind"]},
		{"name": "half of runs", "enabled": true, "if": "event.endsWith('Run Failed') && properties.attempt > 1", "action": "sample", "percent": 50}
	]}`), &f))
	cf, err := f.Compile()
	require.NoError(t, err)

	in := &Input{ID: "e1", Event: "Source Created", Actor: map[string]string{"type": "access_token"}}
	require.Equal(t, "no tokens", cf.Apply(in).Drop)

	in = &Input{ID: "e2", Event: "Source Created", Category: "Sources", Actor: map[string]string{"type": "user"},
		Properties: props(t, `{"secret": "s", "nested": {"pw": 1, "ok": 2}, "kind": "x"}`)}
	require.Empty(t, cf.Apply(in).Drop)
	require.Equal(t, map[string]any{"nested": map[string]any{"ok": json.Number("2")}, "kind": "x"}, in.Properties)

	in = &Input{ID: "e3", Event: "Warehouses Disabled", Category: "Warehouses", Properties: props(t, `{"kind": "snowflake", "x": 1}`)}
	require.Empty(t, cf.Apply(in).Drop)
	require.Equal(t, map[string]any{"kind": "snowflake"}, in.Properties)

	kept := 0
	for i := range 2000 {
		id := fmt.Sprintf("evt_%d", i)
		in := &Input{ID: id, Event: "Audience Run Failed", Category: "Audiences", Properties: map[string]any{"attempt": json.Number("2")}}
		out := cf.Apply(in)
		again := cf.Apply(&Input{ID: id, Event: "Audience Run Failed", Category: "Audiences", Properties: map[string]any{"attempt": json.Number("2")}})
		require.Equal(t, out, again, "sampling is deterministic by id")
		if out.Drop == "" {
			kept++
		}
	}
	require.InDelta(t, 1000, kept, 150)

	// attempt 1 does not match the sample filter: always kept.
	require.Empty(t, cf.Apply(&Input{ID: "x", Event: "Audience Run Failed", Properties: map[string]any{"attempt": json.Number("1")}}).Drop)
	// A missing key is an evaluation error, treated as not matching.
	out := cf.Apply(&Input{ID: "y", Event: "Audience Run Failed", Actor: map[string]string{"type": "system"}})
	require.Empty(t, out.Drop)
	require.Equal(t, 1, out.EvalErrors)
}

func TestFilterErrorsNameTheFieldWithCompilerMessage(t *testing.T) {
	cases := []struct{ doc, field, msg string }{
		{`{"filters": [{"name": "a", "enabled": true, "if": "event ==", "action": "drop"}]}`, "filters[0].if", "Syntax error"},
		{`{"filters": [{"name": "a", "enabled": true, "if": "event", "action": "drop"}]}`, "filters[0].if", "must evaluate to a bool"},
		{`{"filters": [{"name": "a", "enabled": true, "if": "nope == 1", "action": "drop"}]}`, "filters[0].if", "undeclared reference"},
		{`{"filters": [{"name": "a", "enabled": true, "action": "explode"}]}`, "filters[0].action", "want drop"},
		{`{"filters": [{"name": "a", "enabled": true, "action": "sample", "percent": 101}]}`, "filters[0].percent", "0 to 100"},
		{`{"filters": [{"name": "a", "enabled": true, "action": "drop_properties"}]}`, "filters[0].properties", "at least one"},
		{`{"filters": [{"name": "a", "action": "drop"}, {"name": "a", "action": "drop"}]}`, "filters[1].name", "twice"},
		{`{"filters": [{"name": "", "action": "drop"}]}`, "filters[0].name", "name"},
	}
	for _, c := range cases {
		var f Filters
		require.NoError(t, Decode([]byte(c.doc), &f), c.doc)
		_, err := f.Compile()
		var fe *FieldError
		require.ErrorAs(t, err, &fe, c.doc)
		require.Equal(t, c.field, fe.Field, c.doc)
		require.Contains(t, fe.Message, c.msg, c.doc)
	}
}

func TestForwardingAndAlertsValidation(t *testing.T) {
	ok := Forwarding{Enabled: true, Target: Target{URL: "https://api.example.com", WriteKey: "wk_1234567890"}}
	require.NoError(t, ok.Validate())
	require.Equal(t, "****7890", ok.Masked().Target.WriteKey)
	require.Equal(t, "wk_1234567890", ok.Target.WriteKey, "Masked copies")
	for field, f := range map[string]Forwarding{
		"target.url":       {Enabled: true, Target: Target{URL: "ftp://x", WriteKey: "k"}},
		"target.url ":      {Enabled: true, Target: Target{URL: "https://", WriteKey: "k"}},
		"target.write_key": {Enabled: true, Target: Target{URL: "https://x"}},
	} {
		var fe *FieldError
		require.ErrorAs(t, f.Validate(), &fe)
		require.Equal(t, field[:len(fe.Field)], fe.Field)
	}
	require.NoError(t, Forwarding{}.Validate(), "off by default needs nothing")

	a := Alerts{Enabled: true, WebhookURL: "https://hooks.example.com/x", Events: []string{"Warehouses Disabled"}}
	require.NoError(t, a.Validate())
	require.True(t, a.Triggers("Warehouses Disabled"))
	require.False(t, a.Triggers("Source Created"))
	var fe *FieldError
	require.ErrorAs(t, Alerts{Enabled: true, WebhookURL: "https://x"}.Validate(), &fe)
	require.Equal(t, "events", fe.Field)
	require.ErrorAs(t, Alerts{Enabled: true, WebhookURL: "x", Events: []string{"A"}}.Validate(), &fe)
	require.Equal(t, "webhook_url", fe.Field)

	ws, kind, okk := SplitKey(Key("ws/1", KindPlan))
	require.True(t, okk)
	require.Equal(t, "ws/1", ws)
	require.Equal(t, KindPlan, kind)
}

// A write key is bounded and masked in characters: a key of multi-byte
// characters within the bound is accepted, and its masked form is whole
// UTF-8 (its last 4 characters, not bytes).
func TestWriteKeysCountCharacters(t *testing.T) {
	for _, c := range []struct{ key, masked string }{
		{"wk_1234567890", "****7890"},
		{"wk_ключ_écrit_€€€€", "****€€€€"},
		{"ключ", "****"},
		{"ключключк", "****лючк"},
	} {
		require.Equal(t, c.masked, MaskKey(c.key), c.key)
		require.True(t, utf8.ValidString(MaskKey(c.key)), c.key)
	}
	wide := strings.Repeat("é", MaxWriteKey) // 1024 bytes, 512 characters
	f := Forwarding{Enabled: true, Target: Target{URL: "https://api.example.com", WriteKey: wide},
		SavedTargets: []Target{{Name: "other", URL: "https://api.example.org", WriteKey: wide}}}
	require.NoError(t, f.Validate())
	f.SavedTargets[0].WriteKey += "é"
	var fe *FieldError
	require.ErrorAs(t, f.Validate(), &fe)
	require.Equal(t, "saved_targets[0].write_key", fe.Field)
	f.Target.WriteKey += "é"
	require.ErrorAs(t, f.Validate(), &fe)
	require.Equal(t, "target.write_key", fe.Field)
}

func FuzzPlan(f *testing.F) {
	f.Add([]byte(`{"events": {"A B": {"properties": {"type": "object", "properties": {"x": {"type": "string"}}}}}, "unplanned_properties": "omit"}`), []byte(`{"x": "y", "z": 1}`))
	f.Add([]byte(`{"events": {"A B": {"properties": {"$ref": "#/$defs/x", "$defs": {"x": {"pattern": "(a+)+$"}}}}}}`), []byte(`{}`))
	f.Add([]byte(`{"events": {"A B": {"properties": true}}, "on_violation": "block"}`), []byte(`null`))
	f.Add([]byte(`{"events": {"A": {"properties": {"properties": {"x": {"pattern": "^a+$"}}}}, "B": {"properties": {"patternProperties": {"^a+$": {}, "(": {}}}}}}`), []byte(`{"x": "aa"}`))
	f.Add([]byte(`{"events": {"A": {"properties": {"properties": {"x": {"pattern": "(.*){99}"}, "y": {"pattern": "(.*){99}"}}}}}}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, plan, ev []byte) {
		var p Plan
		if Decode(plan, &p) != nil {
			return
		}
		cp, err := p.Compile()
		// Compiling each pattern every time it is met (no cache) refuses
		// the same plans, naming the same field and violations.
		_, each := p.compile(&patternCache{compiled: map[string]patternResult{}})
		if err != nil {
			var fe, fe0 *FieldError
			require.ErrorAs(t, err, &fe)
			require.ErrorAs(t, each, &fe0)
			require.Equal(t, fe0.Field, fe.Field)
			require.ElementsMatch(t, violationList(fe0.Message), violationList(fe.Message))
			return
		}
		require.NoError(t, each)
		var pr map[string]any
		_ = Decode(ev, &pr)
		for name := range p.Events {
			v := cp.Check(name, pr)
			require.False(t, v.Unplanned)
		}
	})
}

func FuzzFilterExpression(f *testing.F) {
	for _, s := range []string{"event == 'Source Created'", "has(properties.a) && properties.a > 3", "actor.id.startsWith('usr')", "size(properties) > 1000", "[1,2,3].all(x, x > 0)", "event"} {
		f.Add(s, []byte(`{"a": 4, "b": {"c": [1, 2]}}`))
	}
	f.Fuzz(func(t *testing.T, expr string, pr []byte) {
		fl := Filters{Filters: []Filter{{Name: "f", Enabled: true, If: expr, Action: ActionDropProperties, Properties: []string{"a", "b.c"}}}}
		cf, err := fl.Compile()
		if err != nil {
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, "filters[0].if", fe.Field)
			return
		}
		var m map[string]any
		_ = Decode(pr, &m)
		in := &Input{ID: "e", Event: "Source Created", Properties: m}
		out := cf.Apply(in)
		require.Empty(t, out.Drop, "a drop_properties filter never drops")
	})
}

func TestBlocksOnlyUnplannedEventsOfABlockingPlan(t *testing.T) {
	var nilPlan *CompiledPlan
	require.False(t, nilPlan.Blocks("X"))
	planned := map[string]PlanEvent{"A": {}}
	allow, err := Plan{Events: planned}.Compile()
	require.NoError(t, err)
	require.False(t, allow.Blocks("X"), "unplanned events allowed")
	block, err := Plan{Events: planned, UnplannedEvents: Block}.Compile()
	require.NoError(t, err)
	require.False(t, block.Blocks("A"))
	require.True(t, block.Blocks("X"))
	require.True(t, block.Check("X", nil).Drop, "Check agrees")
}
