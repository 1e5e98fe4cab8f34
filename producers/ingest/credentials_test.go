package ingest

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/schemas/credential"
)

// testClock is a clock tests move by hand.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock { c := &testClock{}; c.ns.Store(t.UnixNano()); return c }
func (c *testClock) now() time.Time       { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) add(d time.Duration)  { c.ns.Add(int64(d)) }

// putCredential stores a record for name with scopes and returns its token.
func putCredential(t *testing.T, s *CredentialStore, id string, scopes credential.Scopes) string {
	t.Helper()
	secret := credential.NewSecret()
	r := credential.Record{ID: id, Name: "producer " + id, Scopes: scopes, SecretSHA256: credential.Hash(secret), CreatedAt: now}
	putRecord(t, s, r)
	return credential.Token(id, secret)
}

func putRecord(t *testing.T, s *CredentialStore, r credential.Record) {
	t.Helper()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	s.Apply(r.ID, b)
	_, ok := s.Lookup(r.ID)
	require.True(t, ok)
}

func newCredentialServer(t *testing.T, pub Publisher, tokens []string, store *CredentialStore, clock func() time.Time, log *slog.Logger) *httptest.Server {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	gw, err := New(Config{Addr: "x", Tokens: tokens, CredentialsTopic: "creds", Credentials: store, Topic: "audit"}, pub,
		log, prometheus.NewRegistry(), clock)
	require.NoError(t, err)
	e := httpserver.New(httpserver.Options{Name: "ingest"})
	gw.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func TestWritesOutsideTheScopesAre403AndPublishNothing(t *testing.T) {
	store := &CredentialStore{}
	warehouse := putCredential(t, store, "pc_warehouse01", credential.Scopes{
		Workspaces: []string{"ws_1", "ws_eu_*"}, Categories: []string{"Warehouses"}})
	clock := newTestClock(now)
	pub := &fakePublisher{}
	srv := newCredentialServer(t, pub, nil, store, clock.now, nil)

	batch := func(evs ...string) string { return `{"batch": [` + strings.Join(evs, ",") + `]}` }
	for _, tc := range []struct {
		name, body string
		status     int
		field      string
		mentions   string
	}{
		{"one event in another workspace", ev("ws_2", "Warehouses Disabled", ""), 403, "workspace_id", `workspace "ws_2"`},
		{"one event of another category", ev("ws_1", "Source Created", ""), 403, "event", `category "Sources"`},
		{"the platform trail", ev(credential.PlatformWorkspace, "Warehouses Disabled", ""), 403, "workspace_id", credential.PlatformWorkspace},
		{"a batch with one event in another workspace",
			batch(ev("ws_1", "Warehouses Disabled", ""), ev("ws_eu_9", "Warehouses Disabled", ""), ev("ws_us_1", "Warehouses Disabled", "")),
			403, "batch[2].workspace_id", `workspace "ws_us_1"`},
		{"a batch with one event of another category",
			batch(ev("ws_1", "Warehouses Disabled", ""), ev("ws_1", "Audience Created", "")),
			403, "batch[1].event", `category "Audiences"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, srv, "Bearer "+warehouse, tc.body)
			require.Equal(t, tc.status, status, out)
			errObj := out["error"].(map[string]any)
			require.Equal(t, "forbidden", errObj["code"])
			require.Equal(t, tc.field, errObj["field"])
			require.Contains(t, errObj["message"], tc.mentions)
			require.Contains(t, errObj["message"], "pc_warehouse01")
			require.Empty(t, pub.recs, "nothing of the batch is published")
		})
	}

	status, out := post(t, srv, "Bearer "+warehouse, batch(ev("ws_1", "Warehouses Disabled", ""), ev("ws_eu_9", "Warehouses Disabled", "")))
	require.Equal(t, http.StatusAccepted, status, out)
	require.Len(t, pub.recs, 2)
}

func TestInvalidEventsAre400BeforeScopesAreChecked(t *testing.T) {
	store := &CredentialStore{}
	tok := putCredential(t, store, "pc_onlyws1", credential.Scopes{Workspaces: []string{"ws_1"}, Categories: []string{credential.All}})
	srv := newCredentialServer(t, &fakePublisher{}, nil, store, func() time.Time { return now }, nil)
	status, out := post(t, srv, "Bearer "+tok, ev("ws_2", "Source Exploded", ""))
	require.Equal(t, http.StatusBadRequest, status, out)
}

func TestCredentialTokens(t *testing.T) {
	store := &CredentialStore{}
	tok := putCredential(t, store, "pc_allscopes1", credential.AllScopes())
	id, secret, err := credential.ParseToken(tok)
	require.NoError(t, err)
	srv := newCredentialServer(t, &fakePublisher{}, nil, store, func() time.Time { return now }, nil)
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"id and secret", "Bearer " + tok, 202},
		{"scheme in any case", "bearer " + tok, 202},
		{"secret alone", "Bearer " + secret, 401},
		{"id alone", "Bearer " + id, 401},
		{"wrong secret", "Bearer " + id + "." + credential.NewSecret(), 401},
		{"unknown id", "Bearer pc_unknown0000." + secret, 401},
		{"secret's hash", "Bearer " + id + "." + credential.Hash(secret), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, srv, tc.auth, ev("ws_1", "Source Created", ""))
			require.Equal(t, tc.status, status, out)
		})
	}
}

func TestRotationGraceAndRevocationAtTheGateway(t *testing.T) {
	store := &CredentialStore{}
	r := credential.Record{ID: "pc_rotating01", Name: "rotating", Scopes: credential.AllScopes(),
		SecretSHA256: credential.Hash("first-secret"), CreatedAt: now}
	putRecord(t, store, r)
	clock := newTestClock(now)
	srv := newCredentialServer(t, &fakePublisher{}, nil, store, clock.now, nil)
	send := func(secret string) int {
		status, _ := post(t, srv, "Bearer "+credential.Token(r.ID, secret), ev("ws_1", "Source Created", ""))
		return status
	}
	require.Equal(t, 202, send("first-secret"))
	require.Equal(t, 401, send("second-secret"))

	r.Rotate("second-secret", clock.now(), time.Hour)
	putRecord(t, store, r)
	require.Equal(t, 202, send("first-secret"), "the previous secret is valid in the grace period")
	require.Equal(t, 202, send("second-secret"))
	clock.add(time.Hour - time.Second)
	require.Equal(t, 202, send("first-secret"))
	clock.add(time.Second)
	require.Equal(t, 401, send("first-secret"), "the previous secret expires with the grace period")
	require.Equal(t, 202, send("second-secret"))

	revoked := clock.now()
	r.RevokedAt = &revoked
	putRecord(t, store, r)
	require.Equal(t, 401, send("second-secret"), "a revoked credential opens nothing")

	store.Apply(r.ID, nil)
	require.Equal(t, 401, send("second-secret"))
}

func TestCredentialStoreIgnoresInvalidRecords(t *testing.T) {
	var bad []string
	store := &CredentialStore{OnInvalid: func(key string, err error) { bad = append(bad, key) }}
	good := credential.Record{ID: "pc_good00001", Name: "good", Scopes: credential.AllScopes(), SecretSHA256: credential.Hash("s")}
	putRecord(t, store, good)
	store.Apply(good.ID, []byte(`{"id": "pc_good00001", "name": "good", "scopes": {"workspaces": [], "categories": ["*"]}}`))
	_, ok := store.Lookup(good.ID)
	require.False(t, ok, "a record that no longer validates opens nothing")
	b, err := json.Marshal(good)
	require.NoError(t, err)
	store.Apply("pc_other0001", b)
	_, ok = store.Lookup("pc_other0001")
	require.False(t, ok, "a record under another id's key")
	store.Apply("pc_junk", []byte("not json"))
	require.Equal(t, []string{"pc_good00001", "pc_other0001", "pc_junk"}, bad)
}

func TestLegacyTokensAreAllScopesCredentialsWithOneWarning(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	store := &CredentialStore{}
	scoped := putCredential(t, store, "pc_scoped0001", credential.Scopes{Workspaces: []string{"ws_1"}, Categories: []string{"Sources"}})
	other := "second-legacy-token-0123456789"
	pub := &fakePublisher{}
	srv := newCredentialServer(t, pub, []string{token, other}, store, func() time.Time { return now }, log)

	for i, tok := range []string{token, other} {
		status, out := post(t, srv, "Bearer "+tok, ev(fmt.Sprintf("ws_%d", 10+i), "Audience Created", ""))
		require.Equal(t, http.StatusAccepted, status, out)
	}
	status, out := post(t, srv, "Bearer "+scoped, ev("ws_1", "Source Created", ""))
	require.Equal(t, http.StatusAccepted, status, out)
	status, out = post(t, srv, "Bearer "+token, ev(credential.PlatformWorkspace, "Audience Created", ""))
	require.Equal(t, http.StatusForbidden, status, out)
	require.Len(t, pub.recs, 3)

	require.Equal(t, 1, strings.Count(logs.String(), "AUDITTRAIL_INGEST_TOKENS is deprecated"), logs.String())
	require.Contains(t, logs.String(), credential.LegacyID(token))
	require.Contains(t, logs.String(), credential.LegacyID(other))
	require.NotContains(t, logs.String(), token, "the warning names derived ids, never a token")
}

func TestConfigNeedsCredentialsTopicOrTokens(t *testing.T) {
	require.NoError(t, Config{Addr: "x", Topic: "t", CredentialsTopic: "creds"}.Validate(), "credentials alone")
	require.NoError(t, Config{Addr: "x", Topic: "t", Tokens: []string{token}}.Validate(), "legacy tokens alone")
	err := Config{Addr: "x", Topic: "t"}.Validate()
	require.ErrorContains(t, err, "AUDITTRAIL_CREDENTIALS_TOPIC")
	require.ErrorContains(t, err, "AUDITTRAIL_INGEST_TOKENS")
}
