package main

import (
	"bytes"
	"context"
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
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/producers/credentials"
	"github.com/audittrail/audittrail/producers/ingest"
	"github.com/audittrail/audittrail/schemas/credential"
	"github.com/audittrail/audittrail/schemas/event"
)

type cmdEnv struct {
	t                       *testing.T
	credsTopic, eventsTopic string
}

// cmd runs the command against the test's topics and returns its output.
func (c cmdEnv) cmd(args ...string) (int, string, string) {
	c.t.Helper()
	args = append(args[:1:1], append([]string{"-brokers", strings.Join(stacktest.Brokers(), ","),
		"-topic", c.credsTopic, "-events-topic", c.eventsTopic}, args[1:]...)...)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, config.FromMap(map[string]string{}), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

type printed struct {
	credential.Record
	Token string `json:"token"`
}

func (c cmdEnv) mustPrint(args ...string) printed {
	c.t.Helper()
	code, out, errOut := c.cmd(args...)
	require.Equal(c.t, 0, code, errOut)
	var p printed
	require.NoError(c.t, json.Unmarshal([]byte(out), &p), out)
	return p
}

func TestIntegrationGatewayFollowsCredentialsTheCommandWrites(t *testing.T) {
	names := stacktest.Topics(t, 1, "cred-creds", "cred-platform", "cred-ingest")
	c := cmdEnv{t: t, credsTopic: names[0], eventsTopic: names[1]}
	opts := []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	table, err := ingest.OpenCredentials(opts, c.credsTopic, log)
	require.NoError(t, err)
	defer table.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, table.WaitReady(ctx))
	require.NoError(t, table.Ready(ctx))

	var clockNS atomic.Int64
	clockNS.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, clockNS.Load()) }
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), ingest.ProducerOptions()...)...)
	require.NoError(t, err)
	defer cl.Close()
	gw, err := ingest.New(ingest.Config{Addr: "x", CredentialsTopic: c.credsTopic, Credentials: table.Store, Topic: names[2]},
		ingest.NewKafkaPublisher(cl), log, prometheus.NewRegistry(), clock)
	require.NoError(t, err)
	e := httpserver.New(httpserver.Options{Name: "ingest", Ready: table.Ready})
	gw.Register(e)
	srv := httptest.NewServer(e)
	defer srv.Close()

	post := func(token, ws, name string) int {
		body := fmt.Sprintf(`{"workspace_id": %q, "event": %q, "timestamp": %q, "actor": {"type": "user", "id": "u1"}}`,
			ws, name, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano))
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually := func(want int, token, ws, name, msg string) {
		t.Helper()
		require.Eventually(t, func() bool { return post(token, ws, name) == want }, 20*time.Second, 50*time.Millisecond, msg)
	}

	created := c.mustPrint("create", "-operator", "alice@example.com", "-name", "warehouse-service",
		"-workspaces", "ws_eu_*", "-categories", "Warehouses")
	require.True(t, strings.HasPrefix(created.Token, created.ID+"."))
	eventually(http.StatusAccepted, created.Token, "ws_eu_1", "Warehouses Disabled", "the gateway picks up the new credential")
	require.Equal(t, http.StatusForbidden, post(created.Token, "ws_us_1", "Warehouses Disabled"), "another workspace")
	require.Equal(t, http.StatusForbidden, post(created.Token, "ws_eu_1", "Source Created"), "another category")

	rotated := c.mustPrint("rotate", "-operator", "bob", "-id", created.ID, "-grace", "1h")
	require.Equal(t, created.ID, rotated.ID)
	eventually(http.StatusAccepted, rotated.Token, "ws_eu_2", "Warehouses Disabled", "the new secret opens it")
	require.Equal(t, http.StatusAccepted, post(created.Token, "ws_eu_2", "Warehouses Disabled"), "the old one too, in the grace period")
	clockNS.Add(int64(time.Hour + time.Minute))
	require.Equal(t, http.StatusUnauthorized, post(created.Token, "ws_eu_2", "Warehouses Disabled"), "the old secret after the grace period")
	require.Equal(t, http.StatusAccepted, post(rotated.Token, "ws_eu_2", "Warehouses Disabled"))

	code, out, errOut := c.cmd("revoke", "-operator", "carol", "-id", created.ID)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"revoked_at"`)
	eventually(http.StatusUnauthorized, rotated.Token, "ws_eu_2", "Warehouses Disabled", "a revoked credential opens nothing")
	code, _, errOut = c.cmd("rotate", "-operator", "bob", "-id", created.ID)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "revoked")

	code, out, errOut = c.cmd("list")
	require.Equal(t, 0, code, errOut)
	var listed []credential.Record
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 1)
	require.Equal(t, created.ID, listed[0].ID)
	require.NotNil(t, listed[0].RevokedAt)
	require.NotContains(t, out, rotated.Token)

	// The platform trail holds one event per change, without any secret.
	evs := consume(t, opts, c.eventsTopic, 3)
	for i, name := range []string{credentials.EventCreated, credentials.EventRotated, credentials.EventRevoked} {
		got, err := event.Decode(evs[i].Value)
		require.NoError(t, err)
		require.Equal(t, name, got.Event)
		require.Equal(t, credential.PlatformWorkspace, got.WorkspaceID)
		require.Equal(t, credential.PlatformWorkspace, string(evs[i].Key))
		require.Equal(t, created.ID, got.Resource.ID)
		for _, tok := range []string{created.Token, rotated.Token} {
			_, secret, err := credential.ParseToken(tok)
			require.NoError(t, err)
			require.NotContains(t, string(evs[i].Value), secret)
			require.NotContains(t, string(evs[i].Value), credential.Hash(secret))
		}
	}
	// The credentials topic holds the record under its id, hashes only.
	recs := consume(t, opts, c.credsTopic, 3)
	for _, r := range recs {
		require.Equal(t, created.ID, string(r.Key))
		require.NotContains(t, string(r.Value), strings.TrimPrefix(created.Token, created.ID+"."))
	}
}

// consume reads the first n records of a one-partition topic.
func consume(t *testing.T, opts []kgo.Opt, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records of %s", len(out), n, topic)
		out = append(out, f.Records()...)
	}
	require.Len(t, out, n)
	return out
}
