package ingest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
)

// TestContractBoundsOverHTTP: an event that breaks the bounds of the
// contract (depth, keys, duplicate keys, control characters) is a 400
// naming the field, and nothing of its request is published; free text
// keeps tabs and line breaks.
func TestContractBoundsOverHTTP(t *testing.T) {
	deepProps := `, "properties": ` + strings.Repeat(`{"a":`, 32) + `1` + strings.Repeat(`}`, 32)
	keys := make([]string, 1001)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":1`, i)
	}
	tests := []struct {
		name, body string
		field      string // "" means accepted
	}{
		{"10,000 levels", ev("ws_1", "Source Created", `, "properties": {"a":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`), "properties.a" + strings.Repeat("[0]", 30)},
		{"33 levels", ev("ws_1", "Source Created", deepProps), "properties" + strings.Repeat(".a", 31)},
		{"1,001 keys", ev("ws_1", "Source Created", `, "properties": {`+strings.Join(keys, ",")+`}`), "properties"},
		{"workspace_id twice", ev("ws_1", "Source Created", `, "workspace_id": "ws_2"`), "workspace_id"},
		{"duplicate in properties", ev("ws_1", "Source Created", `, "properties": {"a": {"b": 1, "b": 2}}`), "properties.a.b"},
		{"NUL in properties", ev("ws_1", "Source Created", `, "properties": {"note": "a\u0000b"}`), "properties.note"},
		{"ESC in resource.name", ev("ws_1", "Source Created", `, "resource": {"name": "\u001b[31mred"}`), "resource.name"},
		{"C1 in a change", ev("ws_1", "Source Created", `, "changes": {"name": {"new": "\u0085"}}`), "changes.name.new"},
		{"tab in workspace_id", ev("ws\t1", "Source Created", ""), "workspace_id"},
		{"newline in the event name", ev("ws_1", "Source Created\n", ""), "event"},
		{"tab in the email", strings.Replace(ev("ws_1", "Source Created", ""), "a@example.com", `a\t@example.com`, 1), "actor.email"},
		{"tab and newline in free text", ev("ws_1", "Source Created",
			`, "resource": {"name": "line one\nline\ttwo\r"}, "context": {"user_agent": "curl\t8"}, "properties": {"k\t": "v\n"}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &fakePublisher{}
			srv := newServer(t, pub)
			status, out := post(t, srv, "Bearer "+token, tt.body)
			if tt.field == "" {
				require.Equal(t, http.StatusAccepted, status, out)
				require.Len(t, pub.recs, 1)
				e, err := event.Decode(pub.recs[0].Value)
				require.NoError(t, err)
				require.Equal(t, "line one\nline\ttwo\r", e.Resource.Name)
				return
			}
			require.Equal(t, http.StatusBadRequest, status, out)
			errObj := out["error"].(map[string]any)
			require.Equal(t, "invalid_event", errObj["code"], out)
			require.Equal(t, tt.field, errObj["field"], out)
			require.Empty(t, pub.recs, "nothing is published")

			// In a batch, the whole batch is refused.
			status, out = post(t, srv, "Bearer "+token, `{"batch": [`+ev("ws_1", "Source Created", "")+`, `+tt.body+`]}`)
			require.Equal(t, http.StatusBadRequest, status, out)
			require.Equal(t, "batch[1]."+tt.field, out["error"].(map[string]any)["field"], out)
			require.Empty(t, pub.recs, "nothing is published")
		})
	}
}

func TestRepeatedBatchKeyIsRefused(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub)
	one := ev("ws_1", "Source Created", "")
	status, out := post(t, srv, "Bearer "+token, `{"batch": [`+one+`], "batch": [`+one+`]}`)
	require.Equal(t, http.StatusBadRequest, status, out)
	require.Equal(t, "batch", out["error"].(map[string]any)["field"], out)
	require.Empty(t, pub.recs)
}

// Data after the body's object is a 400 and nothing is published: the
// body is one event or one batch, never a batch followed by more.
func TestTrailingDataIsRefused(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub)
	one := ev("ws_1", "Source Created", "")
	for _, body := range []string{
		`{"batch": [` + one + `]}00`,
		`{"batch": [` + one + `]} {"batch": [` + one + `]}`,
		one + `00`,
		one + ` ` + one,
	} {
		status, out := post(t, srv, "Bearer "+token, body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %v", body, out)
	}
	require.Empty(t, pub.recs)
}
