package emitter

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
)

// TestEventsBreakingTheContractBoundsAreRefused: the emitter refuses, with
// the field named and nothing sent, what the gateway and the writer refuse.
func TestEventsBreakingTheContractBoundsAreRefused(t *testing.T) {
	c := newCluster(t, 1)
	em := newEmitter(t, Config{}, c.ListenAddrs()...)
	for _, tc := range []struct {
		name  string
		edit  func(e *event.Event)
		field string // "" means accepted
	}{
		{"tab and newline in names", func(e *event.Event) {
			e.Actor.Name, e.Resource.Name = "Alice\tExample", "line one\nline two"
		}, ""},
		{"33 levels of properties", func(e *event.Event) {
			e.Properties = json.RawMessage(strings.Repeat(`{"a":`, 32) + `1` + strings.Repeat(`}`, 32))
		}, "properties" + strings.Repeat(".a", 31)},
		{"1,001 keys", func(e *event.Event) {
			keys := make([]string, 1001)
			for i := range keys {
				keys[i] = fmt.Sprintf(`"k%d":1`, i)
			}
			e.Properties = json.RawMessage("{" + strings.Join(keys, ",") + "}")
		}, "properties"},
		{"duplicate key in properties", func(e *event.Event) { e.Properties = json.RawMessage(`{"a":1,"a":2}`) }, "properties.a"},
		{"NUL in a change", func(e *event.Event) {
			e.Changes = map[string]event.Change{"name": {New: json.RawMessage(`"a\u0000"`)}}
		}, "changes.name.new"},
		{"ESC in resource.name", func(e *event.Event) { e.Resource.Name = "\x1b[2J" }, "resource.name"},
		{"tab in actor.id", func(e *event.Event) { e.Actor.ID = "usr\t1" }, "actor.id"},
		{"C1 in actor.name", func(e *event.Event) { e.Actor.Name = "a\u0085" }, "actor.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := sample("ws_1", event.NewID())
			tc.edit(&ev)
			_, err := em.Record(&ev)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var ve *event.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Fields[0].Field, ve.Error())
			require.False(t, Retryable(err))
			err = em.Emit(context.Background(), ev)
			require.ErrorAs(t, err, &ve, "Emit refuses it before sending")
		})
	}
	require.Zero(t, em.Stats().PeakBuffered, "nothing refused was buffered")
}
