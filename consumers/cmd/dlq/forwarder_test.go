package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// forwarder runs dlq forwarder with args.
func forwarder(ctx context.Context, out, summary io.Writer, args ...string) (int, error) {
	return run(ctx, append([]string{"forwarder"}, args...), out, summary, quiet)
}

func TestForwarderUsageErrorsNameTheFlag(t *testing.T) {
	for args, want := range map[string]string{
		"":                     "usage: dlq writer|forwarder list|replay",
		"purge":                "usage: dlq writer|forwarder list|replay",
		"-list":                "usage: dlq writer|forwarder list|replay",
		"list -nope":           "-nope",
		"list -workspace":      "-workspace",
		"list replay":          `unexpected argument "replay"`,
		"list -all=maybe":      "-all",
		"replay -all":          "-all lists: use it with dlq forwarder list",
		"replay -workspace":    "-workspace",
		"replay -group a ws_1": `unexpected argument "ws_1"`,
	} {
		var summary bytes.Buffer
		code, err := forwarder(context.Background(), io.Discard, &summary, strings.Fields(args)...)
		require.Equal(t, 2, code, args)
		require.ErrorContains(t, err, want, args)
	}
	for _, cmd := range []string{"list", "replay"} {
		code, err := forwarder(context.Background(), io.Discard, io.Discard, cmd, "-h")
		require.NoError(t, err)
		require.Zero(t, code, "-h prints the flags and succeeds")
	}
}

func TestUnknownAreaIsAUsageError(t *testing.T) {
	for _, args := range [][]string{nil, {"list"}, {"events", "list"}, {"writers", "replay"}} {
		code, err := run(context.Background(), args, io.Discard, io.Discard, quiet)
		require.Equal(t, 2, code, "%v", args)
		require.EqualError(t, err, usage, "%v", args)
	}
}

func TestBadConfigurationIsAUsageError(t *testing.T) {
	t.Setenv("AUDITTRAIL_FORWARDER_WORKRES", "8") // misspelt
	code, err := forwarder(context.Background(), io.Discard, io.Discard, "list")
	require.Equal(t, 2, code)
	require.ErrorContains(t, err, "AUDITTRAIL_FORWARDER_WORKRES")
}

// TestListsAndReplays lists a dead letter without moving it, then replays
// it into a workspace whose forwarding is off, which keeps it in the
// dead-letter topic.
func TestListsAndReplays(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events", "settings", "forward-dlq"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	t.Setenv("AUDITTRAIL_KAFKA_BROKERS", strings.Join(c.ListenAddrs(), ","))
	t.Setenv("AUDITTRAIL_KAFKA_TOPIC", "events")
	t.Setenv("AUDITTRAIL_SETTINGS_TOPIC", "settings")
	t.Setenv("AUDITTRAIL_FORWARDER_DLQ_TOPIC", "forward-dlq")

	e := event.Event{ID: "evt_1", WorkspaceID: "ws_1", Event: "Source Created", Timestamp: time.Now().UTC(),
		ReceivedAt: time.Now().UTC(), Actor: event.Actor{Type: "user", ID: "usr_1"}}
	v, err := event.Marshal(&e)
	require.NoError(t, err)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "forward-dlq", Key: []byte("ws_1"), Value: v,
		Headers: []kgo.RecordHeader{{Key: topics.HeaderForwardTarget, Value: []byte(forward.TargetSource)},
			{Key: topics.HeaderDLQReason, Value: []byte("rejected: 403")}}}).FirstErr())

	var out, summary bytes.Buffer
	code, err := forwarder(ctx, &out, &summary, "list")
	require.NoError(t, err)
	require.Zero(t, code)
	require.Equal(t, "ws_1\tevt_1\tSource Created\tsource\trejected: 403\n", out.String())
	require.Contains(t, summary.String(), "listed 1, delivered 0")

	out.Reset()
	summary.Reset()
	code, err = forwarder(ctx, &out, &summary, "replay", "-workspace", "ws_1")
	require.NoError(t, err)
	require.Zero(t, code)
	require.Contains(t, summary.String(), "kept in the dead-letter topic 1", "forwarding is off for ws_1")

	// The replay moved its group past the letter and appended it again
	// with the new reason: a second replay finds only that copy.
	out.Reset()
	summary.Reset()
	_, err = forwarder(ctx, &out, &summary, "list", "-group", "audittrail-forwarder-replay")
	require.NoError(t, err)
	require.Equal(t, "ws_1\tevt_1\tSource Created\tsource\treplay: forwarding is off for the workspace\n", out.String())
}
