package forward

import (
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// marshalTrackCall is the reference encoding: json.Marshal of the
// TrackCall built with maps, as the forwarder encoded calls before
// encodeTrackCall.
func marshalTrackCall(ev *event.Event, props map[string]any) ([]byte, error) {
	p := make(map[string]any, len(props)+12)
	for k, v := range props {
		p[k] = v
	}
	var overridden map[string]any
	for _, k := range auditFields {
		if v, ok := p[k]; ok {
			if overridden == nil {
				overridden = map[string]any{}
			}
			overridden[k] = v
			delete(p, k)
		}
	}
	setIf := func(m map[string]any, k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	p["workspace_id"] = ev.WorkspaceID
	p["category"] = ev.Category
	p["actor_type"] = ev.Actor.Type
	p["actor_id"] = ev.Actor.ID
	setIf(p, "actor_name", ev.Actor.Name)
	setIf(p, "actor_email", ev.Actor.Email)
	setIf(p, "resource_type", ev.Resource.Type)
	setIf(p, "resource_id", ev.Resource.ID)
	setIf(p, "resource_name", ev.Resource.Name)
	if len(ev.Changes) > 0 {
		p["changes"] = ev.Changes
	}
	if overridden != nil {
		p[overriddenProperties] = overridden
	}
	ctx := map[string]any{"library": map[string]string{"name": "audittrail-forwarder", "version": "1"}}
	setIf(ctx, "ip", ev.Context.IP)
	setIf(ctx, "userAgent", ev.Context.UserAgent)
	setIf(ctx, "request_id", ev.Context.RequestID)
	return json.Marshal(TrackCall{
		Type: "track", Event: ev.Event, UserID: ev.Actor.ID, MessageID: ev.ID,
		Timestamp: ev.Timestamp.UTC().Format(time.RFC3339Nano), Properties: p, Context: ctx,
	})
}

// requireSameEncoding checks that encodeTrackCall writes the bytes of the
// reference encoding for ev and its properties.
func requireSameEncoding(t testing.TB, ev *event.Event) {
	props, err := trackingplan.DecodeProperties(ev.Properties)
	if err != nil {
		props = map[string]any{}
	}
	want, wantErr := marshalTrackCall(ev, props)
	got, err := encodeTrackCall(ev, props, nil)
	if wantErr != nil {
		require.Error(t, err)
		return
	}
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func TestEncodeTrackCallMatchesMarshal(t *testing.T) {
	tests := []struct {
		name  string
		props string
		edit  func(*event.Event)
	}{
		{name: "plain", props: `{"kind": "http", "count": 3, "region": "eu-west-1"}`},
		{name: "no properties"},
		{name: "numbers kept exactly", props: `{"a": 1.50, "b": -0, "c": 1e400, "d": 12345678901234567890123}`},
		{name: "nested and arrays", props: `{"z": {"y": [1, "two", null, true, {"b": 1, "a": 2}]}, "a": []}`},
		{name: "html and controls escaped", props: `{"<tag>": "a&b \u2028 \u0001 \"q\" \\"}`,
			edit: func(e *event.Event) { e.Event = "A <b> & c"; e.Actor.ID = "usr_\"1\"" }},
		{name: "audit names moved", props: `{"workspace_id": "ws_x", "changes": {"k": 1}, "overridden_properties": 2, "actor_name": "M", "kind": 1}`},
		{name: "empty audit fields", props: `{"actor_name": "M"}`, edit: func(e *event.Event) {
			e.Actor = event.Actor{}
			e.Resource = event.Resource{}
			e.Changes = nil
			e.Context = event.Context{}
		}},
		{name: "full context", edit: func(e *event.Event) {
			e.Context = event.Context{IP: "::1", UserAgent: "curl/8 <x>", RequestID: "req_1"}
		}},
		{name: "changes of several keys", edit: func(e *event.Event) {
			e.Changes = map[string]event.Change{"b": {New: json.RawMessage(`{"x":[1,2]}`)}, "a": {Old: json.RawMessage(`"<s>"`)}}
		}},
		{name: "changes to compact and escape", edit: func(e *event.Event) {
			e.Changes = map[string]event.Change{"a": {Old: json.RawMessage(`{ "x" : [1, 2] }`), New: json.RawMessage("\"\u2028 é & \u003c\"")},
				"b": {Old: json.RawMessage(`"\u00e9"`), New: json.RawMessage(`1.50e3`)}}
		}},
		{name: "timestamp in another zone", edit: func(e *event.Event) {
			e.Timestamp = time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
		}},
		{name: "keys sorted bytewise", props: `{"B": 1, "a": 2, "_": 3, "é": 4, "actor": 5, "actor_idx": 6}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mkEvent("ws_1", 1, "Source Created", tt.props)
			if tt.edit != nil {
				tt.edit(&ev)
			}
			requireSameEncoding(t, &ev)
		})
	}
}

func FuzzEncodeTrackCallMatchesMarshal(f *testing.F) {
	f.Add(`{"kind": "x", "workspace_id": 1}`, "Source Created", "usr_1", "203.0.113.9", "ua")
	f.Add(`{"a": {"b": [1, 2.0, "<>"]}, "changes": null}`, "A & B", "", "", "")
	f.Fuzz(func(t *testing.T, props, name, actor, ip, ua string) {
		if json.Valid([]byte(props)) && len(props) > 0 && props[0] == '{' {
			ev := mkEvent("ws_1", 1, name, props)
			ev.Actor.ID, ev.Context.IP, ev.Context.UserAgent = actor, ip, ua
			requireSameEncoding(t, &ev)
		}
	})
}

// FuzzEncodeChangesMatchesMarshal: the changes' values, however written,
// are encoded as json.Marshal writes them.
func FuzzEncodeChangesMatchesMarshal(f *testing.F) {
	f.Add(`{ "a" : [1, "<>"] }`, `"x"`)
	f.Add(`"\u00e9&"`, `12.50`)
	f.Fuzz(func(t *testing.T, old, new string) {
		if !json.Valid([]byte(old)) || !json.Valid([]byte(new)) {
			return
		}
		ev := mkEvent("ws_1", 1, "Source Created", "")
		ev.Changes = map[string]event.Change{"k": {Old: json.RawMessage(old), New: json.RawMessage(new)}}
		requireSameEncoding(t, &ev)
	})
}

// requireStoredChangesEncodeAsDecoded checks that the track call of ev's
// record decoded by event.DecodeStored (changes kept as their JSON when
// they are in the stored form) has the bytes of the one decoded by
// event.Decode.
func requireStoredChangesEncodeAsDecoded(t testing.TB, ev *event.Event) {
	raw, err := event.Marshal(ev)
	if err != nil {
		return // not an event the forwarder can read
	}
	decoded, err := event.Decode(raw)
	stored, changes, serr := event.DecodeStored(raw)
	if err != nil {
		require.Error(t, serr, "decoded as stored only")
		return
	}
	require.NoError(t, serr)
	props, err := trackingplan.DecodeProperties(decoded.Properties)
	require.NoError(t, err)
	want, wantErr := encodeTrackCall(&decoded, props, nil)
	got, err := encodeTrackCall(&stored, props, changes)
	require.Equal(t, wantErr != nil, err != nil)
	require.Equal(t, string(want), string(got))
}

func TestStoredChangesEncodeAsDecoded(t *testing.T) {
	for name, changes := range map[string]map[string]event.Change{
		"none":             nil,
		"plain":            {"enabled": {Old: json.RawMessage("true"), New: json.RawMessage("false")}},
		"one side":         {"b": {New: json.RawMessage(`{"x":[1,2]}`)}, "a": {Old: json.RawMessage(`"s"`)}},
		"to escape":        {"a": {Old: json.RawMessage(`"<b> & c"`), New: json.RawMessage(`"é \u2028"`)}},
		"spaces in values": {"a": {Old: json.RawMessage(`{ "x" : [1, 2] }`)}, "b": {New: json.RawMessage(`null`)}},
		"escaped text":     {"a": {Old: json.RawMessage(`"\u00e9\n\"q\""`), New: json.RawMessage(`1.50e3`)}},
		"odd keys":         {"a b": {New: json.RawMessage(`1`)}, "ü": {New: json.RawMessage(`2`)}, "<k>": {Old: json.RawMessage(`3`)}},
	} {
		t.Run(name, func(t *testing.T) {
			ev := mkEvent("ws_1", 1, "Source Created", `{"kind": "x"}`)
			ev.Changes = changes
			requireStoredChangesEncodeAsDecoded(t, &ev)
		})
	}
	// The stored form is what the gateway and the emitter write: those
	// events take the path that copies it.
	ev := mkEvent("ws_1", 1, "Source Created", "")
	raw, err := event.Marshal(&ev)
	require.NoError(t, err)
	stored, changes, err := event.DecodeStored(raw)
	require.NoError(t, err)
	require.Nil(t, stored.Changes)
	require.JSONEq(t, `{"enabled": {"old": true, "new": false}}`, string(changes))
}

func FuzzStoredChangesEncodeAsDecoded(f *testing.F) {
	f.Add("enabled", `true`, `false`)
	f.Add("a", `{ "x" : [1, "<>"] }`, `"\u00e9&"`)
	f.Add("k", ``, `null`)
	f.Fuzz(func(t *testing.T, key, old, new string) {
		c := event.Change{}
		if old != "" {
			if !json.Valid([]byte(old)) {
				return
			}
			c.Old = json.RawMessage(old)
		}
		if new != "" {
			if !json.Valid([]byte(new)) {
				return
			}
			c.New = json.RawMessage(new)
		}
		ev := mkEvent("ws_1", 1, "Source Created", "")
		ev.Changes = map[string]event.Change{key: c, "zz": {New: json.RawMessage(`1`)}}
		requireStoredChangesEncodeAsDecoded(t, &ev)
	})
}
