package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/schemas/event"
)

func credentialOf(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "legacy-" + hex.EncodeToString(sum[:])[:12]
}

func TestGatewayRecordsTheCredentialOnEveryEvent(t *testing.T) {
	const other = "second-ingest-token-abcdef"
	pub := &fakePublisher{}
	gw, err := New(Config{Addr: "x", Tokens: []string{token, other}, Topic: "audit"}, pub,
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), func() time.Time { return now })
	require.NoError(t, err)
	e := httpserver.New(httpserver.Options{Name: "ingest"})
	gw.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	body := fmt.Sprintf(`{"batch": [%s, %s]}`, ev("ws_1", "Source Created", `, "sender": {"producer": "billing"}`), ev("ws_2", "Warehouses Disabled", ""))
	status, out := post(t, srv, "Bearer "+token, body)
	require.Equal(t, http.StatusAccepted, status, out)
	status, out = post(t, srv, "Bearer "+other, ev("ws_1", "Source Created", ""))
	require.Equal(t, http.StatusAccepted, status, out)

	require.Len(t, pub.recs, 3)
	var got []event.Sender
	for _, r := range pub.recs {
		e, err := event.Decode(r.Value)
		require.NoError(t, err)
		got = append(got, e.Sender)
	}
	require.Equal(t, []event.Sender{
		{CredentialID: credentialOf(token), Producer: "billing"},
		{CredentialID: credentialOf(token)},
		{CredentialID: credentialOf(other)},
	}, got, "the credential of the request, the producer's self-declared name as sent")
	require.NotEqual(t, credentialOf(token), credentialOf(other))
	require.Len(t, credentialOf(token), len("legacy-")+12)
}

func TestProducerCannotSetTheCredential(t *testing.T) {
	pub := &fakePublisher{}
	srv := newServer(t, pub)
	forged := `, "sender": {"credential_id": "warehouse-service"}`

	status, out := post(t, srv, "Bearer "+token, ev("ws_1", "Source Created", forged))
	require.Equal(t, http.StatusBadRequest, status, out)
	errObj := out["error"].(map[string]any)
	require.Equal(t, "invalid_event", errObj["code"])
	require.Equal(t, "sender.credential_id", errObj["field"])

	// Its own credential id is refused too: the gateway alone sets it.
	status, out = post(t, srv, "Bearer "+token, ev("ws_1", "Source Created", fmt.Sprintf(`, "sender": {"credential_id": %q}`, credentialOf(token))))
	require.Equal(t, http.StatusBadRequest, status, out)

	body := fmt.Sprintf(`{"batch": [%s, %s]}`, ev("ws_1", "Source Created", ""), ev("ws_1", "Source Created", forged))
	status, out = post(t, srv, "Bearer "+token, body)
	require.Equal(t, http.StatusBadRequest, status, out)
	require.Equal(t, "batch[1].sender.credential_id", out["error"].(map[string]any)["field"])

	require.Empty(t, pub.recs, "nothing of a refused request is published")
}
