package writer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestEveryConsumedOffsetIsRecordedWithItsOutcome: before the writer
// commits a record, the offsets record holds what it did with it: stored
// (with the row's key and received_at_ns), dead-lettered, expired on
// arrival, a duplicate of a key it stored, or a conflicting version of an
// id it stored. With RecordOffsets off,
// nothing is recorded.
func TestEveryConsumedOffsetIsRecordedWithItsOutcome(t *testing.T) {
	for _, on := range []bool{true, false} {
		k := newKafka(t, 1)
		first := eventRecord(t, "ws_a", "ev_0")
		old := eventAt(t, "ws_a", "ev_old", time.Now().Add(-200*24*time.Hour))
		again := &kgo.Record{Key: first.Key, Value: first.Value}        // a resend of ev_0
		other := eventAt(t, "ws_a", "ev_1", time.Now().Add(-time.Hour)) // ev_1 with another timestamp
		k.send(t, first, eventRecord(t, "ws_a", "ev_1"), &kgo.Record{Key: []byte("ws_a"), Value: []byte("{poison")}, old, again, other)
		sink := newFakeSink()
		cfg := k.config(1000)
		cfg.BatchAge = 20 * time.Millisecond
		cfg.RecordOffsets = on
		_, stop := start(t, cfg, k.client(), sink)
		require.Eventually(t, func() bool { return k.committed(t, 0) == 6 }, 10*time.Second, 10*time.Millisecond)
		require.NoError(t, stop())

		sink.mu.Lock()
		got := map[int64]migrations.StoredOffset{}
		for _, o := range sink.offsets {
			require.Equal(t, k.topic, o.Topic)
			require.False(t, o.StoredAt.IsZero(), "stamped with when it was stored")
			got[o.Offset] = o
		}
		sink.mu.Unlock()
		if !on {
			require.Empty(t, got)
			continue
		}
		require.Len(t, got, 6, "every offset once")
		e, _, err := event.DecodeStored(first.Value)
		require.NoError(t, err)
		require.Equal(t, migrations.OutcomeStored, got[0].Outcome)
		require.Equal(t, "ws_a", got[0].WorkspaceID)
		require.Equal(t, "ev_0", got[0].ID)
		require.Equal(t, e.Timestamp.UnixNano(), got[0].TimestampNs)
		require.Equal(t, e.ReceivedAt.UnixNano(), got[0].ReceivedAtNs)
		require.Equal(t, migrations.OutcomeStored, got[1].Outcome)
		require.Equal(t, migrations.OutcomeDeadLettered, got[2].Outcome)
		require.Equal(t, migrations.OutcomeExpired, got[3].Outcome)
		require.Equal(t, migrations.OutcomeDuplicate, got[4].Outcome)
		require.Equal(t, "ev_0", got[4].ID)
		require.Equal(t, migrations.OutcomeConflict, got[5].Outcome, "the id stored with another timestamp")
	}
}

// eventAt is an accepted event with the given timestamp.
func eventAt(t *testing.T, ws, id string, at time.Time) *kgo.Record {
	e := event.Event{ID: id, WorkspaceID: ws, Event: "Source Modified", Timestamp: at.UTC(), ReceivedAt: time.Now().UTC(),
		Actor: event.Actor{Type: "user", ID: "usr_1"}}
	require.NoError(t, event.Policy{}.Validate(&e))
	b, err := event.Marshal(&e)
	require.NoError(t, err)
	return &kgo.Record{Key: []byte(ws), Value: b}
}
