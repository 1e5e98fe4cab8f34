package trackingplan

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLaterConditionsSeeEditedProperties: a condition after a property
// action sees the properties as the action left them (nested paths and
// numbers included), as if they were read afresh.
func TestLaterConditionsSeeEditedProperties(t *testing.T) {
	var f Filters
	require.NoError(t, Decode([]byte(`{"filters": [
		{"name": "look", "enabled": true, "if": "properties.n > 1", "action": "drop_properties", "properties": ["secret", "nested.pw"]},
		{"name": "secret left", "enabled": true, "if": "has(properties.secret) || has(properties.nested.pw)", "action": "drop"},
		{"name": "keep some", "enabled": true, "if": "properties.nested.ok == 2", "action": "allow_properties", "properties": ["n", "nested.ok", "gone.x"]},
		{"name": "kind left", "enabled": true, "if": "has(properties.kind)", "action": "drop"},
		{"name": "empty gone", "enabled": true, "if": "size(properties.gone) != 0 || size(properties) != 3", "action": "drop"},
		{"name": "numbers", "enabled": true, "if": "properties.n == 2 && properties.nested.ok == 2", "action": "sample", "percent": 100}
	]}`), &f))
	cf, err := f.Compile()
	require.NoError(t, err)
	in := &Input{ID: "e", Event: "Source Created",
		Properties: props(t, `{"n": 2, "secret": "s", "nested": {"pw": 1, "ok": 2}, "kind": "x", "gone": {"y": 1}}`)}
	out := cf.Apply(in)
	require.Empty(t, out.Drop)
	require.Zero(t, out.EvalErrors)
	require.Equal(t, props(t, `{"n": 2, "nested": {"ok": 2}, "gone": {}}`), in.Properties)
}

// TestUsesNamesTheVariablesConditionsReadFromEvents: Input's actor,
// resource and context may be left nil only when no enabled condition
// reads them, whichever way it does.
func TestUsesNamesTheVariablesConditionsReadFromEvents(t *testing.T) {
	cases := []struct {
		expr                     string
		actor, resource, context bool
	}{
		{"event == 'x'", false, false, false},
		{"actor.type == 'user'", true, false, false},
		{"has(resource.id)", false, true, false},
		{"context.exists(k, k == 'ip')", false, false, true},
		{"[1].all(x, actor['id'] != '')", true, false, false},
		{"size(properties) > 0 && resource.name.startsWith(context.ip)", false, true, true},
		{"", false, false, false},
	}
	for _, c := range cases {
		cf, err := Filters{Filters: []Filter{{Name: "f", Enabled: true, If: c.expr, Action: ActionDrop}}}.Compile()
		require.NoError(t, err, c.expr)
		a, r, x := cf.Uses()
		require.Equal(t, []bool{c.actor, c.resource, c.context}, []bool{a, r, x}, c.expr)
	}
	// Disabled filters read nothing; the enabled ones add up.
	cf, err := Filters{Filters: []Filter{
		{Name: "a", Enabled: false, If: "actor.id == ''", Action: ActionDrop},
		{Name: "b", Enabled: true, If: "resource.id == ''", Action: ActionDrop},
		{Name: "c", Enabled: true, If: "context.ip == ''", Action: ActionDrop},
	}}.Compile()
	require.NoError(t, err)
	a, r, x := cf.Uses()
	require.Equal(t, []bool{false, true, true}, []bool{a, r, x})
}
