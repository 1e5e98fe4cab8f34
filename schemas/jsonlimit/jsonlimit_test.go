package jsonlimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func nest(n int, inner string) string {
	return strings.Repeat(`{"a":`, n-1) + inner + strings.Repeat(`}`, n-1)
}

func keys(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	return b.String() + "}"
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kind     Kind // 0: valid
		path     string
		msg      string
	}{
		{"object", `{"a":[1,-2.5e3,true,false,null,"x"],"b":{}}`, 0, "", ""},
		{"space around", " \n{ \"a\" : [ ] }\t", 0, "", ""},
		{"scalar", `"x"`, 0, "", ""},
		{"32 deep", nest(32, "[1]"), 0, "", ""},
		{"33 deep", nest(33, "[1]"), Limit, strings.Repeat("a.", 31) + "a", "nested more than 32 levels deep"},
		{"33 deep arrays", strings.Repeat("[", 33) + strings.Repeat("]", 33), Limit, strings.Repeat("[0]", 32), "nested more than 32 levels deep"},
		{"1000 keys", keys(1000), 0, "", ""},
		{"1001 keys", keys(1001), Limit, "", "more than 1000 keys in one object"},
		{"duplicate", `{"a":1,"b":2,"a":3}`, Limit, "a", "duplicate key"},
		{"duplicate nested", `{"p":{"x":[{"k":1,"k":1}]}}`, Limit, "p.x[0].k", "duplicate key"},
		{"duplicate escaped", `{"a":1,"\u0061":2}`, Limit, "a", "duplicate key"},
		{"duplicate among many", keys(40)[:len(keys(40))-1] + `,"k39":0}`, Limit, "k39", "duplicate key"},
		{"same key in two objects", `{"a":{"a":1},"b":{"a":1}}`, 0, "", ""},
		{"tab newline cr escaped", `{"s":"a\tb\nc\rd\u0009"}`, 0, "", ""},
		{"NUL escaped", `{"s":"a\u0000"}`, Limit, "s", "control character U+0000"},
		{"ESC escaped", `{"s":"\u001b[31m"}`, Limit, "s", "control character U+001B"},
		{"backspace escape", `{"s":"\b"}`, Limit, "s", "control character U+0008"},
		{"form feed escape", `{"s":"\f"}`, Limit, "s", "control character U+000C"},
		{"DEL raw", "{\"s\":\"a\x7f\"}", Limit, "s", "control character U+007F"},
		{"DEL escaped", `{"s":"\u007F"}`, Limit, "s", "control character U+007F"},
		{"C1 raw", "{\"s\":\"a\u0085\"}", Limit, "s", "control character U+0085"},
		{"C1 escaped", `{"s":"\u009f"}`, Limit, "s", "control character U+009F"},
		{"U+00A0 passes", "{\"s\":\"a\u00a0é\U0001F600\"}", 0, "", ""},
		{"control in a key", `{"a\u0001":1}`, Limit, "", "control character U+0001"},
		{"control in an array", `{"a":["x","\u0002"]}`, Limit, "a[1]", "control character U+0002"},
		{"raw tab", "{\"s\":\"a\tb\"}", Syntax, "s", "must be escaped"},
		{"raw NUL", "{\"s\":\"a\x00b\"}", Limit, "s", "control character U+0000"},
		{"invalid UTF-8", "{\"s\":\"\xff\"}", Syntax, "s", "invalid UTF-8"},
		{"surrogate pair", `{"s":"\ud83d\ude00","\ud800":1}`, 0, "", ""},
		{"trailing comma", `{"a":1,}`, Syntax, "", "expected a string key"},
		{"trailing data", `{} x`, Syntax, "", "unexpected data"},
		{"bad number", `[01]`, Syntax, "", ""},
		{"bad number 2", `[1.]`, Syntax, "[0]", "invalid number"},
		{"bad escape", `["\x"]`, Syntax, "[0]", "invalid escape"},
		{"empty", ``, Syntax, "", "unexpected end"},
		{"unclosed", `{"a":[1`, Syntax, "a", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.in))
			if tc.kind == 0 {
				require.NoError(t, err)
				require.True(t, Valid([]byte(tc.in), 0))
				return
			}
			var le *Error
			require.ErrorAs(t, err, &le)
			require.Equal(t, tc.kind, le.Kind, "%v", le)
			require.Equal(t, tc.path, le.Path)
			require.Contains(t, le.Message, tc.msg)
			require.False(t, Valid([]byte(tc.in), 0))
		})
	}
}

func TestValueCountsTheEnclosingDepth(t *testing.T) {
	in := []byte(nest(31, "1") + `,"rest"`)
	n, err := Value(in, 2)
	require.NoError(t, err)
	require.Equal(t, len(nest(31, "1")), n)
	_, err = Value(in, 3)
	require.ErrorContains(t, err, "nested more than 32 levels deep")
}

func TestDeepInputIsRefusedQuickly(t *testing.T) {
	// Ten thousand levels fit in 20 KiB; the scan stops at level 33.
	in := []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))
	err := Check(in)
	var le *Error
	require.ErrorAs(t, err, &le)
	require.Equal(t, Limit, le.Kind)
	require.Less(t, le.Offset, 40)
}

func BenchmarkCheck(b *testing.B) {
	doc := []byte(`{"reason":"cost","tags":["a","b"],"nested":{"count":3,"ratio":0.25,"ok":true,"name":"Snowflake prod ü"},"note":"line one\nline two"}`)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// reference checks the rules with encoding/json's tokenizer, slowly and
// independently of the scanner.
func reference(data []byte) error {
	if !json.Valid(data) {
		return errors.New("syntax")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.key
		if top != nil && top.object {
			top.key = !top.key
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, &frame{object: v == '{', keys: map[string]bool{}, key: true})
				if len(stack) > MaxDepth {
					return errors.New("depth")
				}
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
			}
			continue
		case string:
			if strings.ContainsFunc(v, func(r rune) bool {
				return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f)
			}) {
				return errors.New("control")
			}
			if isKey {
				if top.keys[v] {
					return errors.New("duplicate")
				}
				top.keys[v] = true
				if len(top.keys) > MaxKeys {
					return errors.New("keys")
				}
			}
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-2.5e3,true,false,null,"x"],"b":{}}`, `{"a":1,"\u0061":2}`, `{"s":"\u0000"}`,
		"{\"s\":\"\x7f\u0085\"}", nest(33, "1"), keys(20), `{"s":"\ud83d\ude00","\ud800":1,"\ud800":2}`,
		`{"k":"\t\n\r\b\f\/"}`, `[1e5,0.5E-3,-0]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Check(data)
		require.Equal(t, err == nil, Valid(data, 0))
		if !utf8.Valid(data) {
			if err == nil {
				require.True(t, json.Valid(data))
			}
			return
		}
		ref := reference(data)
		if err == nil {
			require.NoError(t, ref, "%q", data)
			return
		}
		var le *Error
		require.ErrorAs(t, err, &le)
		require.Error(t, ref, "%q: %v", data, err)
		if le.Kind == Syntax {
			require.False(t, json.Valid(data), "%q: %v", data, err)
		}
	})
}
