package trackingplan

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// known accepts the names of a tiny catalogue.
func known(name string) error {
	if name == "Source Created" || name == "User Removed" {
		return nil
	}
	return errors.New("unknown event name")
}

func TestComparedEventNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`event == 'A B'`, []string{"A B"}},
		{`"A B" == event`, []string{"A B"}},
		{`event != 'A B' && actor.type == 'user'`, []string{"A B"}},
		{`event in ['A B', "C D", category]`, []string{"A B", "C D"}},
		{`!(event == 'A B') || (event == 'C D')`, []string{"A B", "C D"}},
		{`properties.event == 'X'`, nil},
		{`category == 'X' && resource.name == 'Y'`, nil},
		{`event.startsWith('X')`, nil},
		{`event ==`, nil},
		{`['a'].exists(event, event == 'x')`, nil},
		{``, nil},
	} {
		require.ElementsMatch(t, c.want, comparedEventNames(c.expr), c.expr)
	}
}

func TestValidateNewRefusesWhatCompileStillLoads(t *testing.T) {
	for _, c := range []struct {
		name  string
		f     Filters
		field string
	}{
		{"empty condition", Filters{Filters: []Filter{{Name: "x", Enabled: true, Action: ActionDrop}}}, "filters[0].if"},
		{"properties on drop", Filters{Filters: []Filter{{Name: "x", If: "true", Action: ActionDrop, Properties: []string{"a"}}}}, "filters[0].properties"},
		{"properties on sample", Filters{Filters: []Filter{{Name: "x", If: "true", Action: ActionSample, Percent: "5", Properties: []string{"a"}}}}, "filters[0].properties"},
		{"unknown name", Filters{Filters: []Filter{{Name: "ok", If: "true", Action: ActionDrop}, {Name: "x", If: "event in ['User Removed', 'Nope Nope']", Action: ActionDrop}}}, "filters[1].if"},
		{"control in the name", Filters{Filters: []Filter{{Name: "x\u0000", If: "true", Action: ActionDrop}}}, "filters[0].name"},
	} {
		_, err := c.f.Compile()
		if c.name != "unknown name" && c.name != "control in the name" {
			require.NoError(t, err, "%s: settings stored before the rule still load", c.name)
		}
		var fe *FieldError
		require.ErrorAs(t, c.f.ValidateNew(known), &fe, c.name)
		require.Equal(t, c.field, fe.Field, c.name)
	}
	ok := Filters{Filters: []Filter{
		{Name: "a", If: "event == 'Source Created'", Action: ActionDrop},
		{Name: "b", If: "true", Action: ActionAllowProperties, Properties: []string{"a.b"}},
	}}
	require.NoError(t, ok.ValidateNew(known))
	require.NoError(t, Filters{Filters: []Filter{{Name: "a", If: "event == 'Anything Else'", Action: ActionDrop}}}.ValidateNew(nil), "nil accepts every name")

	var fe *FieldError
	require.ErrorAs(t, Plan{Events: map[string]PlanEvent{"Source Created": {}, "Nope\nNope": {}}}.ValidateNew(known), &fe)
	require.Equal(t, "events.Nope?Nope", fe.Field)
	require.ErrorAs(t, Alerts{Events: []string{"User Removed", "Nope"}}.ValidateNew(known), &fe)
	require.Equal(t, "events[1]", fe.Field)
	require.ErrorAs(t, Forwarding{Target: Target{URL: "https://x.example", WriteKey: "a\tb"}}.ValidateNew(), &fe)
	require.Equal(t, "target.write_key", fe.Field)
	require.NoError(t, Forwarding{Target: Target{URL: "https://x.example", WriteKey: "a b-Ü"}}.ValidateNew())
}
