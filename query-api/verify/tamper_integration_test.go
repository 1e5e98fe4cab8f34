package verify_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/query-api/verify/tampertest"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const origin = "audittrail.test"

func drillRow(i int, now time.Time) migrations.Row {
	ts := now.Add(-2*time.Hour + time.Duration(i)*time.Minute).Truncate(time.Microsecond)
	recv := now.Add(-time.Hour)
	return migrations.Row{WorkspaceID: "ws_t", Timestamp: ts.Truncate(time.Second), TimestampNs: ts.UnixNano(), ID: fmt.Sprintf("evt_%03d", i),
		Event: "Source Created", Category: "sources", ActorType: "user", ActorID: "usr_1", Changes: "{}", Properties: "{}",
		ReceivedAt: recv.Truncate(time.Second), ReceivedAtNs: recv.UnixNano()}
}

// TestTamperDrill runs the tamper drill against the real ClickHouse and
// Kafka: each tampering is named by verify; the strong attacker's
// self-consistent rewrite is caught against a checkpoint held outside
// ClickHouse; the monitor refuses another key and reports a rollback and
// a fork.
func TestTamperDrill(t *testing.T) {
	conn, chc := stacktest.ClickHouse(t, 90)
	topic := stacktest.Topics(t, 1, "audit-checkpoints")[0]
	ctx := context.Background()
	now := time.Now()
	key, err := logtest.NewKey(origin)
	require.NoError(t, err)
	vs, err := verify.Verifiers([]string{key.Verifier})
	require.NoError(t, err)

	// The trail: 40 stored events and their sealed, signed log.
	lg := logtest.New(origin, "ws_t")
	var rows []migrations.Row
	for i := range 40 {
		r := drillRow(i, now)
		rows = append(rows, r)
		lg.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
	}
	cp, err := lg.Sign(key, now)
	require.NoError(t, err)
	tamper := tampertest.Tamperer{Conn: conn, Database: chc.Database}
	for _, r := range rows {
		require.NoError(t, tamper.InsertForged(ctx, r)) // as the writer stores them
	}
	require.NoError(t, lg.Insert(ctx, conn, chc.Database))
	publish(t, topic, "ws_t", cp.Note)

	src := verify.StoreSource{Log: store.NewLog(conn, chc.Database), Events: store.New(conn, chc.Database, 90, time.Now)}
	online := func(trusted *verify.Checkpoint) verify.Report {
		rep, err := verify.Online(ctx, src, verify.OnlineOptions{WorkspaceID: "ws_t", Known: vs, Origin: origin, Trusted: trusted,
			UnsealedAfter: now.Add(-10 * time.Minute).UnixNano(), ReceivedBy: now.Add(time.Minute).UnixNano()})
		require.NoError(t, err)
		return rep
	}
	rep := online(nil)
	require.Empty(t, rep.Problems)
	require.Equal(t, 40, rep.Checked)

	// The monitor remembers the published checkpoint.
	statePath := filepath.Join(t.TempDir(), "state.json")
	state, err := verify.LoadState(statePath)
	require.NoError(t, err)
	published, err := verify.TopicCheckpoints(ctx, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, topic)
	require.NoError(t, err)
	require.Len(t, published, 1)
	require.Empty(t, state.ObservePublished(ctx, published[0], vs, origin, src))
	require.NoError(t, state.Save(statePath))

	// The weak attacker: each change is named.
	require.NoError(t, tamper.DeleteRow(ctx, "ws_t", "evt_005"))
	require.NoError(t, tamper.SetActor(ctx, "ws_t", "evt_010", "usr_evil"))
	require.NoError(t, tamper.InsertForged(ctx, drillRow(99, now)))
	rep = online(nil)
	problems := strings.Join(rep.Problems, "\n")
	require.Contains(t, problems, "row evt_005 (leaf 5): missing")
	require.Contains(t, problems, "row evt_010 (leaf 10): altered")
	require.Contains(t, problems, "row evt_099 (timestamp")
	require.Contains(t, problems, "present without a leaf")

	// The strong attacker makes ClickHouse self-consistent: only a
	// checkpoint held outside it (the topic, the monitor's state) tells.
	require.NoError(t, tamper.RewriteConsistently(ctx, "ws_t", "evt_020", "usr_evil"))
	rep = online(nil)
	require.Contains(t, strings.Join(rep.Problems, "\n"), "no valid checkpoint")
	fromTopic, err := verify.OpenCheckpoint(published[0].Note, vs, origin)
	require.NoError(t, err)
	fromState, ok := state.Trusted("ws_t")
	require.True(t, ok)
	for _, trusted := range []*verify.Checkpoint{&fromTopic, fromState} {
		rep = online(trusted)
		require.Contains(t, strings.Join(rep.Problems, "\n"), "does not match checkpoint 40")
	}

	// The monitor: another key is refused; a smaller checkpoint and a
	// fork are reported.
	other, err := logtest.NewKey(origin)
	require.NoError(t, err)
	forged, err := lg.Sign(other, now)
	require.NoError(t, err)
	require.Contains(t, observe(t, state, forged.Note, vs, src), "unknown key")
	small := logtest.New(origin, "ws_t")
	fork := logtest.New(origin, "ws_t")
	for i := range 30 {
		r := drillRow(i, now)
		small.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
		fork.Append(r.TimestampNs, r.ID+"x", leaf.Hash(&r))
	}
	smallCp, err := small.Sign(key, now)
	require.NoError(t, err)
	require.Contains(t, observe(t, state, smallCp.Note, vs, src), "rollback: checkpoint of size 30 is smaller than size 40")
	for range 20 {
		fork.Append(1, "more", leaf.Hash(&rows[0]))
	}
	forkCp, err := fork.Sign(key, now)
	require.NoError(t, err)
	require.Contains(t, observe(t, state, forkCp.Note, vs, fork), "fork: checkpoint of size 50 is not consistent with size 40")
}

func observe(t *testing.T, s *verify.State, msg string, vs note.Verifiers, p verify.Prover) string {
	t.Helper()
	problems := s.ObservePublished(context.Background(), verify.Published{WorkspaceID: "ws_t", Note: []byte(msg)}, vs, origin, p)
	require.Len(t, problems, 1)
	return problems[0]
}

func publish(t *testing.T, topic, key, value string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte(key), Value: []byte(value)}).FirstErr())
}
