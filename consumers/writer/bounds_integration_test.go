package writer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

// TestRecordsBreakingTheContractBoundsAreDeadLettered: records another
// client produced straight to Kafka that break the bounds of the event
// contract (depth, keys, duplicate keys, control characters) are parked
// with a reason naming the field; the records around them are stored, and
// free text with tabs and line breaks is stored as sent.
func TestRecordsBreakingTheContractBoundsAreDeadLettered(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	h := newHarness(t, func(db string) writer.Sink { return writer.NewClickHouseSink(conn, db) }, ch.Database)
	now := time.Now().UTC()
	ts, recv := now.Add(-time.Minute).Format(time.RFC3339Nano), now.Format(time.RFC3339Nano)
	raw := func(id, extra string) *kgo.Record {
		if !strings.Contains(extra, `"actor"`) {
			extra += `,"actor":{"type":"user","id":"usr_1"}`
		}
		v := fmt.Sprintf(`{"id":%q,"workspace_id":"ws_b","event":"Source Modified","category":"Sources","timestamp":%q,"received_at":%q%s}`,
			id, ts, recv, extra)
		return &kgo.Record{Topic: h.topic, Key: []byte("ws_b"), Value: []byte(v)}
	}
	keys := make([]string, 1001)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":1`, i)
	}
	poison := []struct {
		rec    *kgo.Record
		reason string
	}{
		{raw("evt_deep", `,"properties":{"a":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`), "properties.a" + strings.Repeat("[0]", 30) + ": nested more than 32 levels deep"},
		{raw("evt_33", `,"properties":`+strings.Repeat(`{"a":`, 32)+`1`+strings.Repeat(`}`, 32)), "nested more than 32 levels deep"},
		{raw("evt_keys", `,"properties":{`+strings.Join(keys, ",")+`}`), "properties: more than 1000 keys in one object"},
		{raw("evt_twice", `,"workspace_id":"ws_other"`), "workspace_id: duplicate key"},
		{raw("evt_dup_props", `,"properties":{"a":1,"a":2}`), "properties.a: duplicate key"},
		{raw("evt_nul", `,"properties":{"note":"a\u0000b"}`), "properties.note: control character U+0000"},
		{raw("evt_esc", `,"resource":{"name":"\u001b[2J"}`), "resource.name: control character U+001B"},
		{raw("evt_c1", "\x2c\"changes\":{\"name\":{\"new\":\"\u0085\"}}"), "changes.name.new: control character U+0085"},
		{raw("evt_tab_id", `,"resource":{"id":"src\t1"}`), "resource.id: must not contain control characters"},
	}
	good := []*kgo.Record{
		raw("evt_before", ""),
		raw("evt_free_text", `,"actor":{"type":"user","id":"usr_2","name":"Alice\tExample"},"resource":{"name":"line one\nline two\r"},"properties":{"note":"a\tb\nc"}`),
	}
	// The good records surround the poison: nothing stops behind it.
	recs := []*kgo.Record{good[0]}
	for _, p := range poison {
		recs = append(recs, p.rec)
	}
	recs = append(recs, good[1])

	stop := h.start()
	h.send(recs...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) == len(good) },
		60*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool { return h.metric("audittrail_writer_dead_letters_total") == float64(len(poison)) },
		30*time.Second, 50*time.Millisecond)
	require.NoError(t, stop())

	dl := h.deadLetters(len(poison))
	require.Len(t, dl, len(poison), "the dead-letter topic holds exactly the poison")
	reasons := map[string]string{}
	for _, r := range dl {
		reasons[string(r.Value)] = header(r, topics.HeaderDLQReason)
	}
	for _, p := range poison {
		require.Contains(t, reasons[string(p.rec.Value)], p.reason)
	}

	var name, note string
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf(
		"SELECT resource_name, properties FROM %s.%s WHERE id = 'evt_free_text'", ch.Database, migrations.Table)).Scan(&name, &note))
	require.Equal(t, "line one\nline two\r", name)
	require.JSONEq(t, `{"note":"a\tb\nc"}`, note)
}
