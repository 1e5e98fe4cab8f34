package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/schemas/event"
)

// TestDuplicateIDsDoNotDuplicate sends every event at least twice, through
// the emitter library (sync and async, each copy with its own received_at)
// and through the gateway (a retried batch, and a batch repeating an
// event), and checks that ClickHouse, read as the API reads it, shows each
// id once.
func TestDuplicateIDsDoNotDuplicate(t *testing.T) {
	proctest.Require(t)
	runBesideOthers(t)
	bins := build(t)
	sfx := stacktest.Suffix()
	topic := "e2e-dup-" + sfx
	db := "e2e_dup_" + sfx
	env := []string{
		"AUDITTRAIL_KAFKA_TOPIC=" + topic,
		"AUDITTRAIL_WRITER_DLQ_TOPIC=e2e-dup-dlq-" + sfx,
		"AUDITTRAIL_WRITER_GROUP=e2e-dup-writer-" + sfx,
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + db,
		"AUDITTRAIL_INGEST_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_WRITER_ADDR=" + proctest.AnyPort,
		"AUDITTRAIL_INGEST_TOKENS=" + ingestToken,
	}
	conn, _ := stacktest.ClickHouseConn(t)
	require.NotNil(t, conn)
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		conn.Close()
	})
	adm, cl := admin(t)
	t.Cleanup(func() { // after the processes stopped (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic, "e2e-dup-dlq-"+sfx)
		cl.Close()
	})
	ingest := start(t, "ingest", bins["ingest"], env).url(t, "http")
	start(t, "writer", bins["writer"], env).url(t, "http")

	em, err := emitter.New(emitter.Config{Topic: topic}, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, nil)
	require.NoError(t, err)
	defer em.Close()
	ctx := context.Background()
	ts := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	want := map[string]int{}
	for i := range 50 {
		ev := event.Event{ID: fmt.Sprintf("lib-%02d", i), WorkspaceID: "ws_dup", Event: "Destination Modified",
			Timestamp: ts.Add(time.Duration(i) * time.Second), Actor: event.Actor{Type: "user", ID: "usr_1"}}
		require.NoError(t, em.Emit(ctx, ev))
		em.EmitAsync(ctx, ev, func(_ event.Event, err error) { require.NoError(t, err) }) // a retry
		want["ws_dup/"+ev.ID] = 1
	}
	require.NoError(t, em.Flush(ctx))

	var batch []string
	for i := range 50 {
		batch = append(batch, fmt.Sprintf(`{"id": "http-%02d", "workspace_id": "ws_dup", "event": "Source Created",
			"timestamp": %q, "actor": {"type": "access_token", "id": "tok_1"}}`, i, ts.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano)))
		want[fmt.Sprintf("ws_dup/http-%02d", i)] = 1
	}
	body := `{"batch": [` + strings.Join(batch, ",") + `]}`
	for range 2 { // a client retry of the whole batch
		status, out := do(t, http.MethodPost, ingest+"/v1/events", ingestToken, body)
		require.Equal(t, http.StatusAccepted, status, string(out))
	}
	// One batch repeating an event, and the same id from another workspace
	// (a different event).
	status, out := do(t, http.MethodPost, ingest+"/v1/events", ingestToken,
		`{"batch": [`+batch[0]+","+batch[0]+","+strings.Replace(batch[0], "ws_dup", "ws_dup2", 1)+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(out))
	want["ws_dup2/http-00"] = 1

	// Wait until the writer has committed every record of the topic (it
	// commits only after ClickHouse stored them), so late copies count too.
	committed := func(records int64) {
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			lag, err := adm.Lag(ctx, "e2e-dup-writer-"+sfx)
			if err != nil {
				return false
			}
			l, ok := lag["e2e-dup-writer-"+sfx]
			if !ok || l.FetchErr != nil || l.DescribeErr != nil {
				return false
			}
			var end, behind int64
			for _, ps := range l.Lag[topic] {
				end += ps.End.Offset
				behind += ps.Lag
			}
			return end == records && behind == 0
		}, 60*time.Second, 250*time.Millisecond, "the writer stores every record")
	}
	committed(50*2 + 50*2 + 3)
	require.Equal(t, want, stacktest.VisibleIDs(t, conn, db), "each id is one visible event")

	// Later, the same ids again with other timestamps (a producer that
	// rebuilt its events before retrying): still one event each, the first.
	var again []string
	for i := range 10 {
		again = append(again, fmt.Sprintf(`{"id": "http-%02d", "workspace_id": "ws_dup", "event": "Source Created",
			"timestamp": %q, "actor": {"type": "access_token", "id": "tok_1"}}`, i, ts.Add(30*time.Minute).Format(time.RFC3339Nano)))
	}
	status, out = do(t, http.MethodPost, ingest+"/v1/events", ingestToken, `{"batch": [`+strings.Join(again, ",")+`]}`)
	require.Equal(t, http.StatusAccepted, status, string(out))
	require.NoError(t, em.Emit(ctx, event.Event{ID: "lib-00", WorkspaceID: "ws_dup", Event: "Destination Modified",
		Timestamp: ts.Add(30 * time.Minute), Actor: event.Actor{Type: "user", ID: "usr_1"}}))
	committed(50*2 + 50*2 + 3 + 11)
	require.Equal(t, want, stacktest.VisibleIDs(t, conn, db), "an id sent again with another timestamp is not a second event")
	var later uint64
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM %s.audit_events WHERE timestamp_ns >= %d",
		db, ts.Add(30*time.Minute).UnixNano())).Scan(&later))
	require.Zero(t, later, "the first version stays")
}

func admin(t *testing.T) (*kadm.Client, *kgo.Client) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...))
	require.NoError(t, err)
	return kadm.NewClient(cl), cl
}
