package trackingplan

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// patternPlan plans events whose schemas use the same few patterns in
// pattern, patternProperties and $defs.
func patternPlan(events int) Plan {
	schema := `{"type":"object","$defs":{"id":{"type":"string","pattern":"^[a-z]{2,8}_[0-9a-f]{4}$"}},` +
		`"properties":{"a":{"type":"string","pattern":"^(a|b|c)[a-z]{1,9}(x|y)*$"},"b":{"$ref":"#/$defs/id"},` +
		`"c":{"type":"string","pattern":"^(a|b|c)[a-z]{1,9}(x|y)*$"}},` +
		`"patternProperties":{"^x_[a-z]+$":{"type":"integer"}}}`
	p := Plan{Events: map[string]PlanEvent{}}
	for i := range events {
		p.Events[fmt.Sprintf("Event %d", i)] = PlanEvent{Properties: json.RawMessage(schema)}
	}
	return p
}

// TestEachPatternCompilesOncePerPlan: the schema compiler asks for a
// pattern when it checks the schema against its meta-schema and again
// when it compiles it, and the work bounds counted its instructions once
// more (every event, at runtime); a 1.4 MiB plan spent most of its 2 s
// and 1.1 GB there. Now each distinct pattern of a plan is compiled once,
// the events share it, and the bounds read the count it was compiled with.
func TestEachPatternCompilesOncePerPlan(t *testing.T) {
	patterns := newPatternCache()
	cp, err := patternPlan(20).compile(patterns)
	require.NoError(t, err)
	require.Equal(t, 3, patterns.misses, "three distinct patterns in 20 events")

	a0 := cp.events["Event 0"].schema.Properties["a"].Pattern
	c0 := cp.events["Event 0"].schema.Properties["c"].Pattern
	a7 := cp.events["Event 7"].schema.Properties["a"].Pattern
	require.Same(t, a0, a7, "events share a pattern")
	require.Same(t, a0, c0, "properties share a pattern")
	n, err := regexInsts(a0.String())
	require.NoError(t, err)
	require.Equal(t, n, regexWork(a0), "the bound counts the pattern's instructions")
	require.True(t, a0.MatchString("abcx"))
	require.False(t, a0.MatchString("zbc"))

	// The bounds read the count kept with the pattern rather than compile
	// it again.
	counted := &planRegexp{Regexp: a0.(*planRegexp).Regexp, insts: 7}
	require.Equal(t, 7, regexWork(counted))

	v := cp.Check("Event 3", map[string]any{"a": "abz", "b": "ab_12f4", "x_n": json.Number("1")})
	require.Empty(t, v.Violations)
	v = cp.Check("Event 3", map[string]any{"a": "zz", "b": "AB_1", "x_n": "one"})
	require.Len(t, v.Violations, 3)
}

// TestPlansDoNotSharePatterns: the cache belongs to one compile, so two
// plans (two workspaces, or two versions of one) share nothing.
func TestPlansDoNotSharePatterns(t *testing.T) {
	one, err := patternPlan(2).Compile()
	require.NoError(t, err)
	two, err := patternPlan(2).Compile()
	require.NoError(t, err)
	require.NotSame(t, one.events["Event 0"].schema.Properties["a"].Pattern,
		two.events["Event 0"].schema.Properties["a"].Pattern)
}

// TestPatternCacheIsBounded: past its limit the cache keeps no more
// patterns and compiles the others each time, with the same results.
func TestPatternCacheIsBounded(t *testing.T) {
	c := newPatternCache()
	c.limit = 2
	for _, p := range []string{"^a+$", "^b+$", "^c+$", "^a+$", "^c+$"} {
		re, err := c.compile(p)
		require.NoError(t, err)
		require.True(t, re.MatchString(strings.Repeat(p[1:2], 3)), p)
		require.Equal(t, p, re.String())
	}
	require.Len(t, c.compiled, 2)
	require.Equal(t, 4, c.misses, "a and b kept; c compiled twice")

	_, err := c.compile("(")
	require.ErrorContains(t, err, "missing closing )")
	_, err = c.compile("(.*){1000}b")
	require.ErrorIs(t, err, errRegexExpands)
}

// TestPatternCacheRefusesAsBefore: a plan is refused with the same field
// and message whether its patterns come from the cache or are compiled
// each time they are met (as before the cache), wherever a refused
// pattern repeats; the message is checkRegex's.
func TestPatternCacheRefusesAsBefore(t *testing.T) {
	ok := `{"type":"string","pattern":"^[a-z]+$"}`
	for _, tc := range []struct{ name, pattern, msg string }{
		{"expands", `(.*){1000}b`, "regular expression too large once compiled (4"},
		{"expands a little", `(a{30}){30}`, "regular expression too large once compiled"},
		{"does not parse", `(`, "missing closing )"},
		{"bad repeat", `a**`, "invalid nested repetition operator"},
		{"accepted", `^[A-Z]{2}-\d{4}$`, ""},
	} {
		for _, where := range []string{"pattern", "patternProperties", "$defs"} {
			t.Run(tc.name+"/"+where, func(t *testing.T) {
				q, err := json.Marshal(tc.pattern)
				require.NoError(t, err)
				var schema string
				switch where {
				case "pattern":
					schema = `{"properties":{"a":` + ok + `,"b":{"pattern":` + string(q) + `},"c":{"pattern":` + string(q) + `}}}`
				case "patternProperties":
					schema = `{"properties":{"a":` + ok + `},"patternProperties":{` + string(q) + `:{}},"propertyNames":{"pattern":` + string(q) + `}}`
				case "$defs":
					schema = `{"$defs":{"d":{"pattern":` + string(q) + `}},"properties":{"a":{"$ref":"#/$defs/d"},"b":{"pattern":` + string(q) + `}}}`
				}
				p := Plan{Events: map[string]PlanEvent{"A": {Properties: json.RawMessage(schema)}, "B": {Properties: json.RawMessage(schema)}}}
				_, cached := p.compile(newPatternCache())
				_, each := p.compile(&patternCache{compiled: map[string]patternResult{}})
				if tc.msg == "" {
					require.NoError(t, cached)
					require.NoError(t, each)
					return
				}
				var fe, fe0 *FieldError
				require.ErrorAs(t, cached, &fe)
				require.ErrorAs(t, each, &fe0)
				require.Equal(t, "events.A.properties", fe.Field)
				require.Equal(t, fe0.Field, fe.Field)
				// The meta-schema's violations come in no fixed order
				// (it walks a map), with or without the cache.
				require.ElementsMatch(t, violationList(fe0.Message), violationList(fe.Message))
				require.Contains(t, fe.Message, tc.msg)
				want := checkRegex(tc.pattern)
				require.Error(t, want)
				require.Contains(t, fe.Message, want.Error())
			})
		}
	}
}

// TestFormatRegexKeepsNothing: in drafts that assert formats, the
// validator checks "format": "regex" with the plan's regexp engine, on
// every event's values. The cache is closed when the compile ends, so
// those values are compiled as before (checkRegex's bound), kept nowhere
// and counted nowhere: a workspace sending distinct values does not grow
// the compiled plan, and events checked at once (the plan is safe for
// concurrent use) share no state. Run with -race.
func TestFormatRegexKeepsNothing(t *testing.T) {
	schema := `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"p":{"type":"string","format":"regex"},"q":{"type":"string","pattern":"^[a-z]+$"}}}`
	patterns := newPatternCache()
	cp, err := Plan{Events: map[string]PlanEvent{"E": {Properties: json.RawMessage(schema)}}}.compile(patterns)
	require.NoError(t, err)
	require.True(t, patterns.closed)
	require.Nil(t, patterns.compiled, "the compile's patterns are dropped")
	misses := patterns.misses

	require.Empty(t, cp.Check("E", map[string]any{"p": "^a+$", "q": "abc"}).Violations)
	v := cp.Check("E", map[string]any{"p": "(", "q": "abc"})
	require.Len(t, v.Violations, 1)
	require.Contains(t, v.Violations[0], "/p: ")
	v = cp.Check("E", map[string]any{"p": "(.*){1000}b"})
	require.Len(t, v.Violations, 1, "a value checkRegex refuses is not a valid regex")

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				v := cp.Check("E", map[string]any{"p": fmt.Sprintf("^x%d_%d+$", g, i), "q": "abc"})
				if len(v.Violations) != 0 {
					t.Errorf("value %d of %d: %v", i, g, v.Violations)
					return
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, misses, patterns.misses, "event values are not counted")
	require.Nil(t, patterns.compiled, "nor kept")
}

func violationList(msg string) []string {
	return strings.Split(strings.TrimPrefix(msg, "invalid JSON Schema: "), "; ")
}

// planRegexp is what the schema compiler keeps for a pattern.
var _ jsonschema.Regexp = (*planRegexp)(nil)

// BenchmarkCheckPatternedItems checks one event whose 200 tags must each
// match a pattern: the schema repeats (items), so Check counts the work
// first, and the count reads each pattern's instructions for every tag.
func BenchmarkCheckPatternedItems(b *testing.B) {
	schema := `{"properties":{"tags":{"type":"array","items":{"type":"string","pattern":"^[a-z]{1,16}(-[a-z0-9]{1,16}){0,3}$"}},` +
		`"labels":{"type":"object","patternProperties":{"^[a-z]+$":{"type":"string","pattern":"^[a-z0-9]+$"}}}}}`
	cp, err := Plan{Events: map[string]PlanEvent{"E": {Properties: json.RawMessage(schema)}}}.Compile()
	require.NoError(b, err)
	tags := make([]any, 200)
	for i := range tags {
		tags[i] = fmt.Sprintf("tag-%d", i)
	}
	labels := map[string]any{}
	for i := range 50 {
		labels[fmt.Sprintf("l%c", 'a'+i%26)+strings.Repeat("x", i/26)] = "v1"
	}
	props := map[string]any{"tags": tags, "labels": labels}
	require.Empty(b, cp.Check("E", props).Violations)
	b.ReportAllocs()
	for b.Loop() {
		cp.Check("E", props)
	}
}

// TestRefusalsAreStable: a schema with several bad patterns is refused
// with one message, not one that follows the validator's map order (and
// the 600-character cut).
func TestRefusalsAreStable(t *testing.T) {
	schema := `{"type":"object","propertyNames":{"pattern":"\\C"},"properties":{"a":{"type":"array","items":{"pattern":"\\1"}},"b":{"pattern":"("},"c":{"pattern":"a**"}}}`
	p := Plan{Events: map[string]PlanEvent{"E0": {Properties: json.RawMessage(schema)}}}
	_, first := p.Compile()
	require.Error(t, first)
	for range 40 {
		_, err := p.Compile()
		require.Equal(t, first.Error(), err.Error())
	}
}
