package writer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestWriterStoresTheSender runs the writer over the real broker and
// server: the sender of each event (a gateway credential, an emitter's
// producer name, or none) lands in the sender columns as sent.
func TestWriterStoresTheSender(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	h := newHarness(t, func(db string) writer.Sink { return writer.NewClickHouseSink(conn, db) }, ch.Database)
	now := time.Now().UTC()
	senders := map[string]event.Sender{
		"evt_gateway": {CredentialID: "legacy-0123456789ab", Producer: "billing"},
		"evt_emitter": {Producer: "warehouse-service"},
		"evt_none":    {},
	}
	var recs []*kgo.Record
	for id, s := range senders {
		e := event.Event{ID: id, WorkspaceID: "ws_1", Event: "Source Modified", Timestamp: now, ReceivedAt: now,
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Sender: s}
		require.NoError(t, event.Policy{}.Validate(&e))
		b, err := event.Marshal(&e)
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Topic: h.topic, Key: []byte("ws_1"), Value: b})
	}
	stop := h.start()
	h.send(recs...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == len(senders) },
		60*time.Second, 50*time.Millisecond)
	require.NoError(t, stop())

	rows, err := conn.Query(context.Background(), fmt.Sprintf(
		"SELECT id, sender_credential_id, sender_producer FROM %s.%s", ch.Database, migrations.Table))
	require.NoError(t, err)
	defer rows.Close()
	got := map[string]event.Sender{}
	for rows.Next() {
		var id string
		var s event.Sender
		require.NoError(t, rows.Scan(&id, &s.CredentialID, &s.Producer))
		got[id] = s
	}
	require.NoError(t, rows.Err())
	require.Equal(t, senders, got)
}
