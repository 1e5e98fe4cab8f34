package search

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Query
	}{
		{"", Query{}},
		{"   ", Query{}},
		{"alice", Query{Clauses: []Clause{{Field: Text, Values: []string{"alice"}}}}},
		// A value is bounded by the whole search only: 1,024 characters,
		// however many bytes they take.
		{strings.Repeat("é", 1024), Query{Clauses: []Clause{{Field: Text, Values: []string{strings.Repeat("é", 1024)}}}}},
		{`alice "Snowflake prod"`, Query{Clauses: []Clause{
			{Field: Text, Values: []string{"alice"}}, {Field: Text, Values: []string{"Snowflake prod"}}}}},
		{`event:"Source Created" actor:alice resource:wh_1 category:Warehouses actor_type:access_token resource_type:warehouse`,
			Query{Clauses: []Clause{
				{Field: Event, Values: []string{"Source Created"}},
				{Field: Actor, Values: []string{"alice"}},
				{Field: Resource, Values: []string{"wh_1"}},
				{Field: Category, Values: []string{"Warehouses"}},
				{Field: ActorType, Values: []string{"access_token"}},
				{Field: ResourceType, Values: []string{"warehouse"}},
			}}},
		{`event:"Source Created" EVENT:"Source Deleted" event:"Source Created"`, Query{Clauses: []Clause{
			{Field: Event, Values: []string{"Source Created", "Source Deleted"}}}}},
		{`-event:"Source Deleted" -bot -"a b"`, Query{Clauses: []Clause{
			{Field: Event, Values: []string{"Source Deleted"}, Negate: true},
			{Field: Text, Values: []string{"bot"}, Negate: true},
			{Field: Text, Values: []string{"a b"}, Negate: true}}}},
		{`"say \"hi\" \\ there"`, Query{Clauses: []Clause{{Field: Text, Values: []string{`say "hi" \ there`}}}}},
		{`100% a_b o'brien`, Query{Clauses: []Clause{
			{Field: Text, Values: []string{"100%"}}, {Field: Text, Values: []string{"a_b"}}, {Field: Text, Values: []string{"o'brien"}}}}},
		{`"arn:aws:iam"`, Query{Clauses: []Clause{{Field: Text, Values: []string{"arn:aws:iam"}}}}},
		{"created:2026-11-01", Query{Since: day(2026, 11, 1), Until: day(2026, 11, 2)}},
		{"created:>2026-11-01", Query{Since: day(2026, 11, 2)}},
		{"created:>=2026-11-01", Query{Since: day(2026, 11, 1)}},
		{"created:<2026-11-05", Query{Until: day(2026, 11, 5)}},
		{"created:<=2026-11-05", Query{Until: day(2026, 11, 6)}},
		{"created:2026-11-01..2026-11-05", Query{Since: day(2026, 11, 1), Until: day(2026, 11, 6)}},
		{"created:2026-11-01..*", Query{Since: day(2026, 11, 1)}},
		{"created:*..2026-11-05", Query{Until: day(2026, 11, 6)}},
		{"created:>2026-11-01T10:00:00+01:00", Query{Since: time.Date(2026, 11, 1, 9, 0, 0, 1, time.UTC)}},
		{"created:<2026-11-01T10:00:00.5Z", Query{Until: time.Date(2026, 11, 1, 10, 0, 0, 5e8, time.UTC)}},
		{"created:>2026-11-01 created:<2026-11-03 created:2026-10-01..2026-11-30", Query{Since: day(2026, 11, 2), Until: day(2026, 11, 3)}},
		{"actor_type:USER", Query{Clauses: []Clause{{Field: ActorType, Values: []string{"USER"}}}}},
		{`actor:"Alice Smith"  ünïcødé`, Query{Clauses: []Clause{
			{Field: Actor, Values: []string{"Alice Smith"}}, {Field: Text, Values: []string{"ünïcødé"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			again, err := Parse(got.String())
			require.NoError(t, err, got.String())
			require.Equal(t, got, again, got.String())
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{`event:"Source Created`, "unterminated quote"},
		{`"abc`, "unterminated quote"},
		{`foo:bar`, `unknown qualifier "foo"`},
		{`usr:1`, "put text containing ':' in double quotes"},
		{`event:`, "event: needs a value"},
		{`event: x`, "event: needs a value"},
		{`actor:""`, "empty quoted phrase"},
		{`""`, "empty quoted phrase"},
		{`"a"b`, "closing quote must be followed by a space"},
		{`-`, "'-' must be followed"},
		{`a - b`, "'-' must be followed"},
		{`actor_type:robot`, `actor_type: must be "user", "access_token" or "system"`},
		{`created:yesterday`, "created: want a date"},
		{`created:>`, "created: want a date"},
		{`created:2026-11-05..2026-11-01`, "ends before it starts"},
		{`created:2026-13-01`, "created: want a date"},
		{`created:9999-01-01`, "created: years 1970 to 2200"},
		{`-created:>2026-11-01`, "created: cannot be negated"},
		{"a\x00b", "control character"},
		{"a\xffb", "not valid UTF-8"},
		{strings.Repeat("a ", 33), "more than 32 search terms"},
		{"a\u0085b", "control character"},
		{strings.Repeat("a ", 600), "longer than 1024 characters"},
		{strings.Repeat("é", 1025), "longer than 1024 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			var se *SyntaxError
			require.True(t, errors.As(err, &se), "%v", err)
			require.Contains(t, err.Error(), tt.msg)
			require.Contains(t, err.Error(), "(at character ")
			require.GreaterOrEqual(t, se.Pos, 0)
		})
	}
}

func TestErrorPosition(t *testing.T) {
	_, err := Parse(`alice foo:bar`)
	var se *SyntaxError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 6, se.Pos)
	require.Equal(t, `unknown qualifier "foo": use one of event:, actor:, resource:, category:, actor_type:, resource_type: or created:; put text containing ':' in double quotes (at character 7)`, err.Error())
}

// FuzzParse checks that any input either parses into a query that formats
// back to itself, with values a store can bind, or fails with a
// *SyntaxError pointing inside the input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`event:"Source Created" actor:alice resource:wh_1 category:Warehouses actor_type:access_token created:>2026-11-01`,
		`created:2026-11-01..2026-11-05 -event:"Source Deleted" "a \"b\" c"`,
		`100% a_b o'brien "arn:aws" -bot`, `created:*..2026-11-01T10:00:00.123+02:00`, `"unterminated`, `x:y`, "-", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			require.ErrorAs(t, err, &se)
			require.GreaterOrEqual(t, se.Pos, 0)
			require.LessOrEqual(t, se.Pos, max(len(s), MaxLen))
			require.True(t, utf8.ValidString(se.Msg) || !utf8.ValidString(s))
			return
		}
		require.LessOrEqual(t, len(q.Clauses), MaxTerms)
		for _, c := range q.Clauses {
			require.NotEmpty(t, c.Values)
			for _, v := range c.Values {
				require.NotEmpty(t, strings.TrimSpace(v))
				require.True(t, utf8.ValidString(v))
				require.LessOrEqual(t, utf8.RuneCountInString(v), MaxLen)
			}
		}
		if !q.Since.IsZero() && !q.Until.IsZero() {
			require.GreaterOrEqual(t, q.Since.Year(), MinYear)
			require.LessOrEqual(t, q.Until.Year(), MaxYear)
		}
		again, err := Parse(q.String())
		require.NoError(t, err, "%q formats as %q", s, q.String())
		require.Equal(t, q, again, "%q formats as %q", s, q.String())
	})
}
