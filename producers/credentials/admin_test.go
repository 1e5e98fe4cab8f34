package credentials_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/producers/credentials"
	"github.com/audittrail/audittrail/schemas/catalogue"
	"github.com/audittrail/audittrail/schemas/credential"
	"github.com/audittrail/audittrail/schemas/event"
)

type fakeTable struct {
	mu   sync.Mutex
	puts map[string][]byte
	err  error
}

func (f *fakeTable) Put(_ context.Context, key string, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.puts[key] = value
	return nil
}

type fakeEmitter struct {
	events []event.Event
	err    error
}

func (f *fakeEmitter) Emit(_ context.Context, ev event.Event) error {
	if f.err != nil {
		return f.err
	}
	f.events = append(f.events, ev)
	return nil
}

var t0 = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

func TestCreateRotateRevokeRecordEveryChangeInThePlatformTrail(t *testing.T) {
	table, events := &fakeTable{puts: map[string][]byte{}}, &fakeEmitter{}
	clock := t0
	a := credentials.New(table, events, func() time.Time { return clock })
	ctx := context.Background()
	scopes := credential.Scopes{Workspaces: []string{"ws_eu_*"}, Categories: []string{"Warehouses"}}

	r, token, err := a.Create(ctx, "alice@example.com", "warehouse-service", scopes)
	require.NoError(t, err)
	id, secret, err := credential.ParseToken(token)
	require.NoError(t, err)
	require.Equal(t, r.ID, id)
	require.True(t, r.Verify(secret, clock))
	require.Contains(t, table.puts, r.ID)
	require.NotContains(t, string(table.puts[r.ID]), secret, "the topic holds the hash, never the secret")

	clock = clock.Add(time.Hour)
	rotated, newToken, err := a.Rotate(ctx, "bob", r.ID, 24*time.Hour)
	require.NoError(t, err)
	_, newSecret, err := credential.ParseToken(newToken)
	require.NoError(t, err)
	require.True(t, rotated.Verify(secret, clock.Add(24*time.Hour-time.Second)))
	require.False(t, rotated.Verify(secret, clock.Add(24*time.Hour)))
	require.True(t, rotated.Verify(newSecret, clock.Add(48*time.Hour)))

	clock = clock.Add(time.Minute)
	revoked, err := a.Revoke(ctx, "carol", r.ID)
	require.NoError(t, err)
	require.NotNil(t, revoked.RevokedAt)
	require.False(t, revoked.Verify(newSecret, clock))
	require.Equal(t, []credential.Record{revoked}, a.List())

	require.Len(t, events.events, 3)
	for i, want := range []struct{ name, actor string }{
		{credentials.EventCreated, "alice@example.com"}, {credentials.EventRotated, "bob"}, {credentials.EventRevoked, "carol"},
	} {
		ev := events.events[i]
		require.Equal(t, want.name, ev.Event)
		require.Equal(t, credential.PlatformWorkspace, ev.WorkspaceID)
		require.Equal(t, want.actor, ev.Actor.ID)
		require.Equal(t, event.Resource{Type: "producer_credential", ID: r.ID, Name: "warehouse-service"}, ev.Resource)
		require.NoError(t, event.Policy{Now: func() time.Time { return clock }}.Validate(&ev), "the event is valid under the contract")
		require.Equal(t, catalogue.CategoryAuditTrail, ev.Category)
		b, err := event.Marshal(&ev)
		require.NoError(t, err)
		for _, s := range []string{secret, newSecret, credential.Hash(secret), credential.Hash(newSecret)} {
			require.NotContains(t, string(b), s, "no secret or hash in %s", want.name)
		}
	}
	require.JSONEq(t, `"warehouse-service"`, string(events.events[0].Changes["name"].New))
	require.JSONEq(t, `{"workspaces": ["ws_eu_*"], "categories": ["Warehouses"]}`, string(events.events[0].Changes["scopes"].New))
	require.Contains(t, string(events.events[1].Properties), `"previous_valid_until"`)
}

func TestAdminRefusals(t *testing.T) {
	ctx := context.Background()
	table, events := &fakeTable{puts: map[string][]byte{}}, &fakeEmitter{}
	a := credentials.New(table, events, func() time.Time { return t0 })

	_, _, err := a.Rotate(ctx, "op", "pc_missing0000", time.Hour)
	require.ErrorIs(t, err, credentials.ErrNotFound)
	_, err = a.Revoke(ctx, "op", "pc_missing0000")
	require.ErrorIs(t, err, credentials.ErrNotFound)
	_, _, err = a.Create(ctx, "op", "x", credential.Scopes{Workspaces: []string{"ws_1"}})
	require.ErrorContains(t, err, "categories")
	_, _, err = a.Create(ctx, " ", "x", credential.AllScopes())
	require.ErrorContains(t, err, "operator")

	r, _, err := a.Create(ctx, "op", "x", credential.AllScopes())
	require.NoError(t, err)
	_, err = a.Revoke(ctx, "op", r.ID)
	require.NoError(t, err)
	_, err = a.Revoke(ctx, "op", r.ID)
	require.ErrorIs(t, err, credentials.ErrRevoked)
	_, _, err = a.Rotate(ctx, "op", r.ID, time.Hour)
	require.ErrorIs(t, err, credentials.ErrRevoked)

	events.err = errors.New("broker down")
	before := len(table.puts)
	_, _, err = a.Create(ctx, "op", "y", credential.AllScopes())
	require.ErrorContains(t, err, "nothing changed")
	require.Len(t, table.puts, before, "an unrecorded change is not made")
	require.Len(t, a.List(), 1)
}
