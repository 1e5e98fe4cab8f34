package event

import (
	"bytes"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

const senderEvent = `{"id":"evt_1","workspace_id":"ws_1","event":"Warehouses Disabled","timestamp":"2026-11-25T10:00:00Z",` +
	`"actor":{"type":"user","id":"usr_1"},"sender":{"credential_id":"legacy-0123456789ab","producer":"warehouse-service"}}`

// TestSenderDecodesOnBothPaths checks that the sender reaches the event
// through the general decoder, the fast path and the writer's DecodeStored,
// and survives an encoding round trip.
func TestSenderDecodesOnBothPaths(t *testing.T) {
	want := Sender{CredentialID: "legacy-0123456789ab", Producer: "warehouse-service"}
	_, fast := fastDecode([]byte(senderEvent), false)
	require.True(t, fast, "the fast path takes a sender")
	w, err := parseWire([]byte(senderEvent))
	require.NoError(t, err)
	require.Equal(t, want, w.Sender, "general decoder")

	e, err := Decode([]byte(senderEvent))
	require.NoError(t, err)
	require.Equal(t, want, e.Sender)
	require.NoError(t, policy().Validate(&e))

	stored, _, err := DecodeStored([]byte(senderEvent))
	require.NoError(t, err)
	require.Equal(t, want, stored.Sender)

	// With an escape the general decoder takes it, to the same result.
	escaped := strings.Replace(senderEvent, `"warehouse-service"`, `"warehouse\u002dservice"`, 1)
	_, fast = fastDecode([]byte(escaped), false)
	require.False(t, fast)
	e2, err := Decode([]byte(escaped))
	require.NoError(t, err)
	require.Equal(t, want, e2.Sender)

	out, err := Marshal(&e)
	require.NoError(t, err)
	require.Contains(t, string(out), `"sender":{"credential_id":"legacy-0123456789ab","producer":"warehouse-service"}`)
	back, err := Decode(out)
	require.NoError(t, err)
	require.Equal(t, want, back.Sender)

	// No sender encodes as an empty object and decodes to the zero Sender.
	e.Sender = Sender{}
	out, err = Marshal(&e)
	require.NoError(t, err)
	require.Contains(t, string(out), `"sender":{}`)
	back, err = Decode(out)
	require.NoError(t, err)
	require.Zero(t, back.Sender)
}

func TestSenderIsValidatedAsIdentifiers(t *testing.T) {
	for _, tc := range []struct {
		sender Sender
		field  string
	}{
		{Sender{CredentialID: "cred\t1"}, "sender.credential_id"},
		{Sender{CredentialID: strings.Repeat("c", MaxIDLen+1)}, "sender.credential_id"},
		{Sender{Producer: "billing\n"}, "sender.producer"},
		{Sender{Producer: "bill\u0085ing"}, "sender.producer"},
		{Sender{Producer: strings.Repeat("p", MaxIDLen+1)}, "sender.producer"},
	} {
		e, err := Decode([]byte(senderEvent))
		require.NoError(t, err)
		e.Sender = tc.sender
		err = policy().Validate(&e)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, "%+v", tc.sender)
		require.Equal(t, tc.field, ve.Fields[0].Field)
	}
	e, err := Decode([]byte(senderEvent))
	require.NoError(t, err)
	e.Sender = Sender{Producer: "Billing Service (eu-1)"}
	require.NoError(t, policy().Validate(&e), "a producer name may hold spaces and punctuation")

	_, err = Decode([]byte(`{"sender":{"credential_id":"c","name":"x"}}`))
	require.ErrorContains(t, err, "name")
	_, err = Decode([]byte(`{"sender":"billing"}`))
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "sender", ve.Fields[0].Field)
}

func TestSchemaDescribesSender(t *testing.T) {
	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	require.NoError(t, err)
	require.NoError(t, c.AddResource("event.schema.json", doc))
	sch, err := c.Compile("event.schema.json")
	require.NoError(t, err)
	validate := func(s string) error {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
		require.NoError(t, err)
		return sch.Validate(v)
	}
	require.NoError(t, validate(senderEvent))
	require.Error(t, validate(strings.Replace(senderEvent, `"producer"`, `"name"`, 1)))
	require.Error(t, validate(strings.Replace(senderEvent, `"warehouse-service"`, `"a\u0007b"`, 1)))
}
