package event

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
)

// fastCases are inputs around the fast path's edges; each must decode as
// the general decoder decodes it, whichever path takes it.
var fastCases = []struct {
	name string
	in   string
	fast bool // the fast path takes it
}{
	{"good event", goodEvent, true},
	{"compact", `{"id":"e","workspace_id":"w","event":"Source Created","timestamp":"2026-11-25T10:00:00Z","actor":{"type":"user","id":"u"},"changes":{"b":{"new":[1,2.5e-3,{"x":null}]},"a":{"old":"x","new":"y"}},"properties":{"n":-0.5,"t":true,"f":false,"s":"ü"}}`, true},
	{"empty object", `{}`, true},
	{"empty changes", `{"changes":{}}`, true},
	{"empty change", `{"changes":{"a":{}}}`, true},
	{"empty properties", `{"properties":{}}`, true},
	{"escape in a string", `{"id":"e\"1"}`, false},
	{"escape in a raw value", `{"changes":{"a":{"old":"\u00e9"}}}`, true},
	{"null field", `{"id":null}`, false},
	{"null changes", `{"changes":null}`, false},
	{"null properties", `{"properties":null}`, false},
	{"null old", `{"changes":{"a":{"old":null}}}`, true},
	{"properties not an object", `{"properties":[1]}`, false},
	{"unknown field", `{"idx":"e"}`, false},
	{"unknown change field", `{"changes":{"a":{"older":1}}}`, false},
	{"unknown actor field", `{"actor":{"kind":"user"}}`, false},
	{"case differs", `{"ID":"e"}`, false},
	{"repeated field", `{"id":"a","id":"b"}`, false},
	{"repeated actor field", `{"actor":{"id":"a","id":"b"}}`, false},
	{"repeated change", `{"changes":{"a":{"old":1},"a":{"new":2}}}`, false},
	{"repeated old", `{"changes":{"a":{"old":1,"old":2}}}`, false},
	{"empty string", `{"actor":{"name":""}}`, false},
	{"number for a string", `{"id":1}`, false},
	{"trailing data", `{"id":"e"} x`, false},
	{"trailing space", "{\"id\":\"e\"} \n", true},
	{"bad number", `{"changes":{"a":{"old":01}}}`, false},
	{"bad number 2", `{"changes":{"a":{"old":1.}}}`, false},
	{"bad number 3", `{"changes":{"a":{"old":-}}}`, false},
	{"bad literal", `{"changes":{"a":{"old":tru}}}`, false},
	{"unclosed", `{"id":"e"`, false},
	{"control character", "{\"id\":\"a\tb\"}", false},
	{"deep raw value", `{"properties":{"a":` + deep(40) + `}}`, false},
	{"spaces everywhere", " { \"changes\" : { \"a\" : { \"old\" : [ 1 , 2 ] , \"new\" : { } } } , \"id\" : \"e\" } ", true},
	{"bad timestamp", `{"timestamp":"yesterday"}`, true},
	{"quote after eight bytes", `{"id":"abcdefgh","event":"abcdefghijklmnop"}`, true},
	{"escape after eight bytes", `{"id":"abcdefghij\\n"}`, false},
	{"control after eight bytes", "{\"id\":\"abcdefghij\x01\"}", false},
	{"unclosed long string", `{"id":"abcdefghijklmnop`, false},
	{"sender", `{"id":"e","sender":{"credential_id":"legacy-0123456789ab","producer":"billing"}}`, true},
	{"sender producer only", `{"sender":{"producer":"billing"}}`, true},
	{"empty sender", `{"sender":{}}`, true},
	{"null sender", `{"sender":null}`, false},
	{"empty credential id", `{"sender":{"credential_id":""}}`, false},
	{"repeated sender field", `{"sender":{"producer":"a","producer":"b"}}`, false},
	{"unknown sender field", `{"sender":{"name":"a"}}`, false},
	{"sender not an object", `{"sender":"billing"}`, false},
	{"repeated sender", `{"sender":{},"sender":{"producer":"b"}}`, false},
}

// boundsCases are inputs around the bounds of jsonlimit, for the fuzzer.
var boundsCases = []string{
	`{"properties":` + strings.Repeat(`{"a":`, 30) + `1` + strings.Repeat(`}`, 30) + `}`,
	`{"properties":` + strings.Repeat(`{"a":`, 31) + `1` + strings.Repeat(`}`, 31) + `}`,
	`{"changes":{"a":{"new":` + deep(29) + `}}}`,
	`{"changes":{"a":{"new":` + deep(30) + `}}}`,
	`{"properties":{"a":1,"a":2}}`,
	`{"properties":{"a":1,"\u0061":2}}`,
	`{"id":"e","id":"e"}`,
	`{"changes":{"a":{"new":{"k":"\u0000"}}}}`,
	"{\"actor\":{\"name\":\"a\\tb\\u0085\x7f\"}}",
	"{\"resource\":{\"name\":\"\u0085\"}}",
	"{\"properties\":{\"\u0090\":1}}",
	"{\"id\":\"\xff\"}",
}

// storedCases are changes around the edges of DecodeStored's compact
// form; compact says it keeps them as they are.
var storedCases = []struct {
	name    string
	changes string
	compact bool
}{
	{"none", ``, false},
	{"empty", `{}`, true},
	{"one", `{"name":{"new":"iOS"}}`, true},
	{"old and new", `{"a":{"old":1,"new":[1, 2]},"b":{"old":null},"c":{}}`, true},
	{"inner space kept", `{"a":{"old":{"x": 1}}}`, true},
	{"unsorted", `{"b":{"new":1},"a":{"new":2}}`, false},
	{"repeated", `{"a":{"new":1},"a":{"new":2}}`, false},
	{"new before old", `{"a":{"new":1,"old":2}}`, false},
	{"space", `{"a": {"new":1}}`, false},
	{"space in change", `{"a":{"new": 1}}`, false},
	{"space after value", `{"a":{"new":1 }}`, false},
	{"non-ASCII key", `{"é":{"new":1}}`, false},
	{"DEL in key", "{\"a\x7f\":{\"new\":1}}", false},
	{"empty key", `{"":{"new":1}}`, false},
	{"key too long", `{"` + strings.Repeat("k", MaxChangeKey+1) + `":{"new":1}}`, false},
	{"longest key", `{"` + strings.Repeat("k", MaxChangeKey) + `":{"new":1}}`, true},
	{"too many", manyChanges(MaxChanges + 1), false},
	{"most", manyChanges(MaxChanges), true},
	{"unknown field", `{"a":{"older":1}}`, false},
	{"old twice", `{"a":{"old":1,"old":2}}`, false},
	{"trailing comma", `{"a":{"old":1,}}`, false},
}

func manyChanges(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%04d":{"new":%d}`, i, i)
	}
	return b.String() + "}"
}

func TestDecodeStoredKeepsChangesAsAppendChangesWrites(t *testing.T) {
	for _, tc := range storedCases {
		t.Run(tc.name, func(t *testing.T) {
			data := `{"id":"e","workspace_id":"w","event":"Source Created","timestamp":"2026-11-25T10:00:00Z","actor":{"type":"user","id":"u"}`
			if tc.changes != "" {
				data += `,"changes":` + tc.changes
			}
			data += "}"
			_, changes, err := DecodeStored([]byte(data))
			require.Equal(t, tc.compact, changes != nil, "compact: %s", changes)
			if tc.compact {
				require.NoError(t, err)
				require.Equal(t, tc.changes, string(changes))
			}
			requireSameStored(t, []byte(data))
		})
	}
}

// requireSameStored checks that DecodeStored finds what Decode finds, with
// compact changes equal to AppendChanges of Decode's, and that validation
// says the same of both.
func requireSameStored(t *testing.T, data []byte) {
	t.Helper()
	want, wantErr := Decode(data)
	got, changes, err := DecodeStored(data)
	require.Equal(t, wantErr, err)
	if changes == nil {
		require.Equal(t, want, got)
		return
	}
	require.Nil(t, got.Changes)
	wantChanges, aerr := AppendChanges(nil, want.Changes)
	require.NoError(t, aerr)
	require.Equal(t, string(wantChanges), string(changes), "%q", data)
	got.Changes = want.Changes
	require.Equal(t, want, got)
	require.Equal(t, policy().Validate(&want), policy().Validate(&got), "%q", data)
}

func deep(n int) string {
	s := "1"
	for range n {
		s = "[" + s + "]"
	}
	return s
}

func TestFastDecodeMatchesDecode(t *testing.T) {
	for _, tc := range fastCases {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := fastDecode([]byte(tc.in), false)
			require.Equal(t, tc.fast, ok, "fast path taken")
			requireSameDecoding(t, []byte(tc.in))
		})
	}
}

// requireSameDecoding checks that where the fast path takes data, the
// general decoder accepts it and finds the same event.
func requireSameDecoding(t *testing.T, data []byte) {
	t.Helper()
	fw, ok := fastDecode(data, false)
	if !ok {
		return
	}
	require.True(t, utf8.Valid(data), "the fast path took invalid UTF-8: %q", data)
	require.NoError(t, CheckJSON(data), "the fast path took what breaks the bounds: %q", data)
	sw, err := parseWire(data)
	require.NoError(t, err, "the fast path took what the general decoder refuses: %q", data)
	require.Equal(t, sw, fw, "%q", data)
	fe, ferr := fromWire(&fw)
	se, serr := fromWire(&sw)
	require.Equal(t, serr, ferr)
	require.Equal(t, se, fe)
}

func FuzzFastDecodeMatchesDecode(f *testing.F) {
	for _, tc := range fastCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range storedCases {
		f.Add([]byte(`{"changes":` + tc.changes + `}`))
	}
	for _, tc := range boundsCases {
		f.Add([]byte(tc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		requireSameDecoding(t, data)
		requireSameStored(t, data)
		if e, err := Decode(data); err == nil {
			require.NoError(t, CheckJSON(data), "Decode took what breaks the bounds: %q", data)
			// AppendChanges writes what the general encoder writes.
			got, err := AppendChanges(nil, e.Changes)
			require.NoError(t, err)
			want := []byte("{}")
			if len(e.Changes) > 0 {
				want, err = json.Append(nil, e.Changes, json.SortMapKeys)
				require.NoError(t, err)
			}
			require.Equal(t, string(want), string(got))
		}
	})
}

func TestAppendChangesWritesWhatTheEncoderWrites(t *testing.T) {
	for _, changes := range []map[string]Change{
		nil,
		{"b": {New: json.RawMessage(`2`)}, "a": {Old: json.RawMessage(`"x"`), New: json.RawMessage(`{"k":[1,true]}`)}},
		{"é": {Old: json.RawMessage(`1`)}},               // not plain: general encoder
		{"a\"b": {Old: json.RawMessage(`1`)}},            // not plain: general encoder
		{"a": {Old: json.RawMessage(` 1`)}},              // space: general encoder
		{"settings": {Old: json.RawMessage(`{"x": 1}`)}}, // inner spaces are kept by both
		{"empty": {}},
	} {
		got, err := AppendChanges(nil, changes)
		require.NoError(t, err)
		want := []byte("{}")
		if len(changes) > 0 {
			want, err = json.Append(nil, changes, json.SortMapKeys)
			require.NoError(t, err)
		}
		require.Equal(t, string(want), string(got))
	}
}

func BenchmarkDecode(b *testing.B) {
	e, err := Decode([]byte(goodEvent))
	require.NoError(b, err)
	e.ReceivedAt = time.Now()
	data, err := Marshal(&e)
	require.NoError(b, err)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			w, err := parseWire(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := fromWire(&w); err != nil {
				b.Fatal(err)
			}
		}
	})
}
