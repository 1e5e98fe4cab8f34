package trackingplan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
)

// TestCommonConditionsRunNatively: the shapes filters use most compile
// to their native form (so that Apply does not run CEL for them), and
// what is outside the native subset does not.
func TestCommonConditionsRunNatively(t *testing.T) {
	cases := []struct {
		expr   string
		native bool
	}{
		{"actor.type == 'access_token'", true},
		{"has(properties.debug)", true},
		{"has(properties.region) && properties.region.startsWith('eu')", true},
		{"has(properties.count) && properties.count > 1000000", true},
		{"resource.id.endsWith('7')", true},
		{"event in ['Source Created', 'Source Deleted'] || category != 'Sources'", true},
		{"!(context.ip.contains('10.')) && properties['first-name'] <= 'm'", true},
		{"properties.ratio >= 0.5 || properties.enabled == true", true},
		{"size(properties.name) > 3", false},
		{"properties.tags.exists(t, t == 'x')", false},
		{"properties.n + 1 > 2", false},
		{"properties.name.matches('^a')", false},
		{"properties.n == 1u", false},
	}
	for _, c := range cases {
		cond, err := compileCondition(c.expr)
		require.NoError(t, err, c.expr)
		require.Equal(t, c.native, cond.native != nil, c.expr)
	}
	// A list whose estimated cost could reach a budget runs in CEL.
	var f Filters
	f.Filters = []Filter{{Name: "a", Enabled: true, If: "properties.s.contains(properties.t)", Action: ActionDrop}}
	cf, err := f.Compile()
	require.NoError(t, err)
	require.NotNil(t, cf.filters[0].native)
	require.False(t, cf.native, "estimated cost %d", cf.filters[0].est)
}

// TestNativeConditionsAgreeWithCEL: random filter lists over random
// events give the same outcome (dropping filter, evaluation errors, the
// budget) and leave the same properties with Apply (native conditions)
// as with every condition in CEL; and most conditions are decided
// natively, so the comparison is not empty.
func TestNativeConditionsAgreeWithCEL(t *testing.T) {
	lists := 1_500
	if testing.Short() {
		lists = 150
	}
	decided, asked := 0, 0
	for seed := range uint64(lists) {
		d, a := agree(t, seed, 20, "")
		decided, asked = decided+d, asked+a
	}
	require.Greater(t, decided*10, asked*6, "native conditions decided %d of %d evaluations", decided, asked)
}

// FuzzNativeConditionsAgreeWithCEL is TestNativeConditionsAgreeWithCEL
// with the generator's seed and the event's properties from the fuzzer.
func FuzzNativeConditionsAgreeWithCEL(f *testing.F) {
	f.Add(uint64(1), `{"s": "eu-west", "n": 2, "nul": null, "obj": {"x": 1}}`)
	f.Add(uint64(7), `{"n": 12345678901234567890, "f": 1e400, "arr": [1, "a"], "obj": null}`)
	f.Add(uint64(9), `{"a": true, "b": "true", "c": 1.0, "t": false, "s": ""}`)
	f.Fuzz(func(t *testing.T, seed uint64, props string) {
		if !json.Valid([]byte(props)) || len(props) > 4096 {
			return
		}
		agree(t, seed, 1, props)
	})
}

// agree compares Apply and applyCEL on one generated filter list over
// events generated events (props, when not empty, are the properties of
// every event) and returns how many conditions the native forms decided
// of those they were asked.
func agree(t *testing.T, seed uint64, events int, props string) (decided, asked int) {
	t.Helper()
	g := condGen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	fl := g.filters()
	cf, err := fl.Compile()
	require.NoError(t, err)
	for range events {
		raw := props
		if raw == "" {
			raw = g.properties()
		}
		tmpl := g.input(seed)
		mk := func() *Input {
			p, err := DecodeProperties([]byte(raw))
			if err != nil {
				p = map[string]any{}
			}
			in := *tmpl
			in.Properties, in.Bounded = p, true
			return &in
		}
		native, viaCEL := mk(), mk()
		for i := range cf.filters {
			f := &cf.filters[i]
			if f.native == nil || !cf.native {
				continue
			}
			asked++
			cv := condVars{in: mk()}
			if _, ok := f.native(&cv); ok {
				decided++
				// The native form resolves the properties exactly when
				// the program does.
				vars := &activation{in: mk()}
				_, _ = evalWithin(f.prg, vars, newCostTracker(), 0)
				require.Equal(t, vars.props != nil, cv.touched, "properties resolved by %q, seed %d, properties %s", f.name, seed, raw)
			}
		}
		got, want := cf.Apply(native), cf.applyCEL(viaCEL)
		ctx := fmt.Sprintf("seed %d, properties %s, event %+v, filters %+v", seed, raw, *tmpl, fl.Filters)
		require.Equal(t, want, got, ctx)
		require.Equal(t, viaCEL.Properties, native.Properties, ctx)
	}
	return decided, asked
}

// condGen generates filter lists, conditions, properties and events.
type condGen struct{ r *rand.Rand }

func (g condGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

var genKeys = []string{"a", "b", "n", "f", "s", "t", "nul", "obj", "arr", "region", "count", "debug", "first-name"}

func (g condGen) filters() Filters {
	var f Filters
	for i := range 1 + g.r.IntN(5) {
		fl := Filter{Name: fmt.Sprintf("f%d", i), Enabled: g.r.IntN(8) != 0, If: g.checkedCond()}
		switch g.r.IntN(4) {
		case 0:
			fl.Action = ActionDrop
		case 1:
			fl.Action, fl.Percent = ActionSample, json.Number(g.pick("0", "50", "100"))
		case 2:
			fl.Action, fl.Properties = ActionDropProperties, g.paths()
		default:
			fl.Action, fl.Properties = ActionAllowProperties, g.paths()
		}
		f.Filters = append(f.Filters, fl)
	}
	return f
}

func (g condGen) paths() []string {
	var out []string
	for range 1 + g.r.IntN(3) {
		out = append(out, g.pick("a", "s", "n", "obj", "obj.x", "nul.x", "nul.x.y", "obj.z.w", "obj.nul.x", "arr", "region", "debug"))
	}
	return out
}

// checkedCond is a condition the checker accepts (most are).
func (g condGen) checkedCond() string {
	for {
		c := g.cond(3)
		if _, err := compileCondition(c); err == nil {
			return c
		}
	}
}

// cond is a boolean condition of at most depth levels of && || !.
func (g condGen) cond(depth int) string {
	if depth > 0 {
		switch g.r.IntN(6) {
		case 0:
			return "(" + g.cond(depth-1) + " && " + g.cond(depth-1) + ")"
		case 1:
			return "(" + g.cond(depth-1) + " || " + g.cond(depth-1) + ")"
		case 2:
			return "!(" + g.cond(depth-1) + ")"
		}
	}
	switch g.r.IntN(9) {
	case 0:
		return "has(" + g.path() + ")"
	case 1, 2:
		return g.value() + " " + g.pick("==", "!=", "<", "<=", ">", ">=") + " " + g.value()
	case 3:
		return g.value() + "." + g.pick("startsWith", "endsWith", "contains") + "(" + g.value() + ")"
	case 4:
		return g.value() + " in [" + g.literal() + ", " + g.literal() + "]"
	case 5:
		return g.pick("true", "false", "properties.t", "properties.a")
	case 6:
		// Outside the native subset: the list mixes both.
		return g.pick("size(properties) > 2", "properties.arr.exists(x, x == 1)", "properties.n + 1 > 2", "properties.s.matches('^e')")
	}
	return g.value() + " == " + g.literal()
}

func (g condGen) path() string {
	return g.pick("properties."+g.pick(genKeys...), "properties.obj.x", "properties.nul.x", "properties.s.x",
		"actor.type", "actor.nope", "resource.id", "context.ip", "properties.obj.z.w")
}

func (g condGen) value() string {
	switch g.r.IntN(4) {
	case 0:
		return g.literal()
	case 1:
		return g.pick("event", "category", "actor.type", "actor['id']", "resource.id", "context.ip", "actor.nope")
	}
	return g.pick("properties."+g.pick(genKeys...), "properties['first-name']", "properties.obj.x", "properties.obj",
		"properties.nul.x", "properties.arr", "properties[1]")
}

func (g condGen) literal() string {
	return g.pick("'eu'", "'eu-west'", "'west'", "'ser'", "''", "'user'", "'7'", "1", "0", "1000000", "-5", "1.5", "2.0", "true", "false", "'Source Created'")
}

func (g condGen) properties() string {
	var parts []string
	for _, k := range genKeys {
		if g.r.IntN(3) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%q: %s", k, g.json(2)))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (g condGen) json(depth int) string {
	switch n := g.r.IntN(10); {
	case n < 2:
		return g.pick(`"eu-west"`, `"x"`, `""`, `"user"`, `"Source Created"`, `"1"`)
	case n < 4:
		return g.pick("1", "0", "1000000", "-5", "1.5", "2.0", "12345678901234567890", "1e400", "-0")
	case n < 5:
		return g.pick("true", "false")
	case n < 6:
		return "null"
	case n < 8 && depth > 0:
		return fmt.Sprintf(`{"x": %s, "z": %s, "nul": null}`, g.json(depth-1), g.json(depth-1))
	case depth > 0:
		return fmt.Sprintf(`[%s, %s]`, g.json(depth-1), g.json(depth-1))
	}
	return `"leaf"`
}

// input is an event without properties; its maps are only read.
func (g condGen) input(seed uint64) *Input {
	in := &Input{ID: fmt.Sprintf("evt-%d", seed), Event: g.pick("Source Created", "Other"), Category: "Sources"}
	if seed%5 != 0 { // else nil maps: no condition reads them in Pipeline, but Apply must cope
		in.Actor = map[string]string{"type": g.pick("user", "access_token"), "id": "usr_7", "name": "", "email": "a@b.c"}
		in.Resource = map[string]string{"type": "source", "id": g.pick("src_7", "src_1"), "name": "Web"}
		in.Context = map[string]string{"ip": g.pick("10.0.0.1", "203.0.113.9"), "user_agent": "", "request_id": ""}
	}
	return in
}

// TestAllowThroughNullKeepsTheConditionsView: allow_properties keeping a
// path through a null member leaves an empty object there in the view
// the conditions see (not in the properties sent); a later condition sees
// it whether the earlier ones ran natively or in CEL.
func TestAllowThroughNullKeepsTheConditionsView(t *testing.T) {
	var f Filters
	require.NoError(t, Decode([]byte(`{"filters": [
		{"name": "keep", "enabled": true, "if": "has(properties.k)", "action": "allow_properties", "properties": ["a.b"]},
		{"name": "a left", "enabled": true, "if": "has(properties.a)", "action": "drop"}
	]}`), &f))
	cf, err := f.Compile()
	require.NoError(t, err)
	require.True(t, cf.native)
	for _, apply := range []func(*Input) Outcome{cf.Apply, cf.applyCEL} {
		in := &Input{ID: "e", Properties: props(t, `{"a": null, "k": 1}`), Bounded: true}
		require.Equal(t, Outcome{Drop: "a left"}, apply(in))
		require.Empty(t, in.Properties)
	}
}

// TestStrictCallsResolveWhatCELResolves: a comparison whose left operand
// fails does not read its right one, in CEL and natively; otherwise the
// properties' view would be made before a nested allow_properties through
// a null and a later condition would see that path (review R4-4: the event
// was forwarded where CEL drops it).
func TestStrictCallsResolveWhatCELResolves(t *testing.T) {
	var f Filters
	require.NoError(t, Decode([]byte(`{"filters": [
		{"name": "tokens", "enabled": true, "if": "actor.team == properties.team", "action": "drop"},
		{"name": "keep billing", "enabled": true, "if": "event == 'Source Created'", "action": "allow_properties", "properties": ["billing.plan"]},
		{"name": "no billing", "enabled": true, "if": "!has(properties.billing)", "action": "drop"}
	]}`), &f))
	cf, err := f.Compile()
	require.NoError(t, err)
	require.True(t, cf.native)
	for _, apply := range []func(*Input) Outcome{cf.Apply, cf.applyCEL} {
		in := &Input{ID: "e", Event: "Source Created", Actor: map[string]string{"type": "user"}, Bounded: true,
			Properties: props(t, `{"billing": null, "team": "x", "email": "ceo@example.com"}`)}
		require.Equal(t, Outcome{Drop: "no billing", EvalErrors: 1}, apply(in))
	}
}

// TestLargeEventsRunInCEL: an event whose properties are larger than the
// cost estimates assume runs its conditions in CEL alone, so that the
// budgets decide as they always did (review R4-1, R4-2: natively, equal
// strings of 400,000 characters were compared where CEL runs out of the
// condition's budget).
func TestLargeEventsRunInCEL(t *testing.T) {
	var f Filters
	require.NoError(t, Decode([]byte(`{"filters": [
		{"name": "same", "enabled": true, "if": "properties.a == properties.b && properties.a == properties.b && properties.a == properties.b", "action": "drop"}
	]}`), &f))
	cf, err := f.Compile()
	require.NoError(t, err)
	require.True(t, cf.native)
	long := strings.Repeat("x", 400_000)
	ev := event.Event{ID: "e", Event: "Source Created", Properties: json.RawMessage(`{"a": "` + long + `", "b": "` + long + `"}`)}
	d := Pipeline{Filters: cf}.Run(&ev)
	require.Empty(t, d.Dropped)
	require.Equal(t, 1, d.FilterErrors)
	// The same event, small enough, is decided natively and dropped.
	ev.Properties = json.RawMessage(`{"a": "x", "b": "x"}`)
	require.Equal(t, DropFilter, Pipeline{Filters: cf}.Run(&ev).Dropped)
}
