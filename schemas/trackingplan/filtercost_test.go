package trackingplan

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// costly is a condition near the cost limit of one condition: about 21 ms
// per evaluation.
const costly = `[1,2,3,4,5,6,7,8,9,10].all(x,[1,2,3,4,5,6,7,8,9,10].all(y,[1,2,3,4,5,6,7,8,9,10].all(z,[1,2,3,4,5,6,7,8,9,10].all(w,x+y+z+w>0))))`

func costlyFilters(n int) Filters {
	var f Filters
	for i := range n {
		f.Filters = append(f.Filters, Filter{Name: fmt.Sprintf("f%d", i), Enabled: true, If: costly, Action: ActionDrop})
	}
	return f
}

// TestFilterSetsOverTheCostLimitAreRefused: each condition is within its own
// limit, but a set whose estimated costs add up to more than
// MaxFilterSetCost is a 400 naming the filter that crosses it. Disabled
// filters do not count.
func TestFilterSetsOverTheCostLimitAreRefused(t *testing.T) {
	f := costlyFilters(50)
	_, err := f.Compile()
	require.NoError(t, err, "each condition alone is accepted")
	err = f.ValidateNew(nil)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "filters[3].if", fe.Field)
	require.Contains(t, fe.Message, "300000")

	require.NoError(t, costlyFilters(3).ValidateNew(nil))
	f = costlyFilters(6)
	for i := 3; i < 6; i++ {
		f.Filters[i].Enabled = false
	}
	require.NoError(t, f.ValidateNew(nil))

	cheap := Filters{}
	for i := range MaxFilters {
		cheap.Filters = append(cheap.Filters, Filter{Name: fmt.Sprintf("c%d", i), Enabled: true,
			If: `event == 'Source Created' && has(properties.plan) && properties.plan == 'pro' && actor.email.endsWith('@example.com')`, Action: ActionDrop})
	}
	require.NoError(t, cheap.ValidateNew(nil), "50 ordinary conditions stay far below the limit")
}

// TestFiltersShareOneCostBudgetPerEvent: stored filters saved before the
// limit are still loaded; at run time all conditions of one event share
// MaxFilterSetCost. The condition that crosses it and every later one count
// as evaluation errors and do not match, so a later filter matching every
// event does not apply.
func TestFiltersShareOneCostBudgetPerEvent(t *testing.T) {
	f := costlyFilters(49)
	f.Filters = append(f.Filters, Filter{Name: "all", Enabled: true, If: "true", Action: ActionDrop})
	cf, err := f.Compile()
	require.NoError(t, err)
	out := cf.Apply(&Input{ID: "e1", Event: "Source Created", Properties: map[string]any{}})
	require.Empty(t, out.Drop, "conditions after the budget is spent are not evaluated")
	require.True(t, out.OverBudget)
	require.Equal(t, 50, out.EvalErrors)

	// Within the budget conditions behave as before.
	cf, err = Filters{Filters: []Filter{
		{Name: "a", Enabled: true, If: "properties.n > 1", Action: ActionDrop},
		{Name: "b", Enabled: true, If: "event == 'Source Created'", Action: ActionDrop},
	}}.Compile()
	require.NoError(t, err)
	out = cf.Apply(&Input{ID: "e1", Event: "Source Created", Properties: map[string]any{}})
	require.Equal(t, Outcome{Drop: "b", EvalErrors: 1}, out)
}

// BenchmarkCostlyFilters measures one event through 50 conditions at the
// limit of one condition (about 1 s per event before the shared budget).
func BenchmarkCostlyFilters(b *testing.B) {
	cf, err := costlyFilters(50).Compile()
	require.NoError(b, err)
	in := &Input{ID: "e1", Event: "Source Created", Properties: map[string]any{}}
	for b.Loop() {
		cf.Apply(in)
	}
}
