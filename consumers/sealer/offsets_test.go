package sealer

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// placed is an item at offset off of partition 0 with its record's row.
func placed(off int64, r migrations.Row) Item {
	return Item{Key: Key{r.WorkspaceID, r.TimestampNs, r.ID}, At: At{"events", 0, off}, Record: &r}
}

// storedAt is the offsets record's row of a stored item.
func storedAt(it Item, receivedAtNs int64) migrations.StoredOffset {
	return migrations.StoredOffset{Topic: it.At.Topic, Partition: it.At.Partition, Offset: it.At.Offset, Outcome: migrations.OutcomeStored,
		WorkspaceID: it.Key.WorkspaceID, ID: it.Key.ID, TimestampNs: it.Key.TimestampNs, ReceivedAtNs: receivedAtNs}
}

// TestTheRoundIsDecidedByTheOffsetsRecord: each outcome the writer
// recorded decides its record, and only records it does not hold are
// read back from the events table.
func TestTheRoundIsDecidedByTheOffsetsRecord(t *testing.T) {
	cases := []struct {
		name string
		// setup stores rows and records offsets for the item it returns.
		setup func(st *memStore) Item
		// leaf is whether the item gets a leaf; readBack why it was read
		// back by key ("" when not).
		leaf     bool
		readBack string
	}{
		{"stored: sealed from the record, nothing read back", func(st *memStore) Item {
			it := placed(1, row("ws_1", t0, "e1"))
			st.store(*it.Record)
			st.record(storedAt(it, it.Record.ReceivedAtNs))
			return it
		}, true, ""},
		{"dead-lettered: no leaf, nothing read back", func(st *memStore) Item {
			it := placed(2, row("ws_1", t0, "e2"))
			st.record(migrations.StoredOffset{Topic: "events", Offset: 2, Outcome: migrations.OutcomeDeadLettered})
			return it
		}, false, ""},
		{"expired on arrival: no leaf, nothing read back", func(st *memStore) Item {
			it := placed(3, row("ws_1", t0.Add(-400*24*time.Hour), "e3"))
			st.record(migrations.StoredOffset{Topic: "events", Offset: 3, Outcome: migrations.OutcomeExpired})
			return it
		}, false, ""},
		{"a conflicting version of a stored id: no leaf, nothing read (not even the leaves by id)", func(st *memStore) Item {
			it := placed(11, row("ws_1", t0.Add(-72*time.Hour), "e11"))
			st.record(migrations.StoredOffset{Topic: "events", Offset: 11, Outcome: migrations.OutcomeConflict, WorkspaceID: "ws_1", ID: "e11"})
			return it
		}, false, ""},
		{"a duplicate whose id has no leaf (an older writer stored it and crashed before its commit): read back, sealed", func(st *memStore) Item {
			it := placed(4, row("ws_1", t0, "e4"))
			st.store(*it.Record)
			st.record(migrations.StoredOffset{Topic: "events", Offset: 4, Outcome: migrations.OutcomeDuplicate})
			return it
		}, true, "duplicate"},
		{"stored, then a duplicate of itself on a replay: sealed", func(st *memStore) Item {
			it := placed(5, row("ws_1", t0, "e5"))
			st.store(*it.Record)
			dup := storedAt(it, it.Record.ReceivedAtNs)
			dup.Outcome = migrations.OutcomeDuplicate
			st.record(storedAt(it, it.Record.ReceivedAtNs), dup)
			return it
		}, true, ""},
		{"not in the record (an older writer): read back", func(st *memStore) Item {
			it := placed(6, row("ws_1", t0, "e6"))
			st.store(*it.Record)
			return it
		}, true, "absent"},
		{"not in the record and not stored: no leaf", func(*memStore) Item {
			return placed(7, row("ws_1", t0, "e7"))
		}, false, "absent"},
		{"the offset's row names another event: read back", func(st *memStore) Item {
			it := placed(8, row("ws_1", t0, "e8"))
			st.store(*it.Record)
			o := storedAt(it, 1)
			o.ID = "forged"
			st.record(o)
			return it
		}, true, "other_key"},
		{"a record this sealer cannot validate: read back", func(st *memStore) Item {
			it := placed(9, row("ws_1", t0, "e9"))
			st.store(*it.Record)
			st.record(storedAt(it, it.Record.ReceivedAtNs))
			it.Record = nil
			return it
		}, true, "unvalidated"},
		{"the offset's row has another received_at: read back", func(st *memStore) Item {
			it := placed(10, row("ws_1", t0, "e10"))
			st.store(*it.Record)
			st.record(storedAt(it, it.Record.ReceivedAtNs-1))
			return it
		}, true, "received_at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newMemStore()
			it := c.setup(st)
			s := newSequencer(st, func() time.Time { return t0 })
			out, err := s.seal(context.Background(), []Item{it})
			require.NoError(t, err)
			require.Equal(t, c.leaf, len(out.Leaves) == 1, "leaf")
			if c.readBack == "" {
				require.Zero(t, st.rowsRead, "nothing read back")
				require.Zero(t, st.hasLeaves, "no leaf ids read")
				require.Empty(t, out.ReadBack)
				return
			}
			require.Equal(t, 1, st.rowsRead, "read back")
			require.Equal(t, map[string]int{c.readBack: 1}, out.ReadBack)
			tampered := c.readBack == "other_key" || c.readBack == "received_at"
			require.Equal(t, tampered, len(out.OffsetMismatches) == 1, "counted as a changed offsets record")
		})
	}
}

// TestALeafIsTheRecordItself: the leaf is computed from the record, not
// from the row now in the events table: a row changed there after the
// writer stored it is sealed as its record says (verify online then
// reports it altered). An offsets row with another received_at_ns than
// the record's (the writer writes the record's own) is a changed offsets
// record: reported, and the row read back and compared as before
// migration 9 (here it was changed too: no leaf).
func TestALeafIsTheRecordItself(t *testing.T) {
	st := newMemStore()
	record := row("ws_1", t0, "e1")
	it := placed(1, record)
	changed := record
	changed.ActorID = "usr_evil"
	st.store(changed)
	st.record(storedAt(it, record.ReceivedAtNs))
	s := newSequencer(st, func() time.Time { return t0 })
	out, err := s.seal(context.Background(), []Item{it})
	require.NoError(t, err)
	require.Len(t, out.Leaves, 1)
	require.Empty(t, out.Mismatches)
	h := leaf.Hash(&record)
	require.Equal(t, string(h[:]), out.Leaves[0].Hash)
	bad := leaf.Hash(&changed)
	require.NotEqual(t, string(bad[:]), out.Leaves[0].Hash, "the changed row does not hash to its leaf")
	require.Zero(t, st.rowsRead)

	// A forged received_at in the offsets record, and the row changed to
	// match it.
	record2 := row("ws_1", t0.Add(time.Second), "e2")
	it2 := placed(2, record2)
	forged := record2
	forged.ReceivedAtNs -= int64(time.Hour)
	forged.ReceivedAt = time.Unix(0, forged.ReceivedAtNs).UTC().Truncate(time.Second)
	forged.ActorID = "usr_evil"
	st.store(forged)
	st.record(storedAt(it2, forged.ReceivedAtNs))
	out, err = s.seal(context.Background(), []Item{it2})
	require.NoError(t, err)
	require.Empty(t, out.Leaves, "not sealed with the forged received_at")
	require.Equal(t, []Key{it2.Key}, out.OffsetMismatches)
	require.Equal(t, []Key{it2.Key}, out.Mismatches, "the row read back differs from the record")
	require.Equal(t, map[string]int{readBackReceivedAt: 1}, out.ReadBack)
}

// TestSpansCoverEachPartitionsOffsets: one range per topic and partition,
// from its lowest offset to its highest; items without a place are left
// to the read-back.
func TestSpansCoverEachPartitionsOffsets(t *testing.T) {
	its := []Item{
		{At: At{"events", 1, 7}}, {At: At{"events", 0, 3}}, {At: At{"events", 1, 5}},
		{}, {At: At{"events", 0, 4}}, {At: At{"events", 1, 9}}, {At: At{"other", 0, 1}},
	}
	require.Equal(t, []Span{{"events", 0, 3, 4}, {"events", 1, 5, 9}, {"other", 0, 1, 1}}, spans(its))
	require.Empty(t, spans([]Item{{}}))
}

// TestDuplicatesOfSealedIDsReadNothing: records the writer found in its id
// window are settled without the read-back when their id has a leaf (in
// memory, or looked up for an old event) or a stored copy in the round: a
// tenant resending its events does not send the sealer to the events
// table.
func TestDuplicatesOfSealedIDsReadNothing(t *testing.T) {
	st := newMemStore()
	s := newSequencer(st, func() time.Time { return t0 })
	recent := placed(1, row("ws_1", t0, "e1"))
	old := placed(2, row("ws_1", t0.Add(-72*time.Hour), "e2")) // older than the sequencer's lookback
	for _, it := range []Item{recent, old} {
		st.store(*it.Record)
		st.record(storedAt(it, it.Record.ReceivedAtNs))
	}
	out, err := s.seal(context.Background(), []Item{recent, old})
	require.NoError(t, err)
	require.Len(t, out.Leaves, 2)

	dup := func(off int64, of Item) Item {
		d := of
		d.At.Offset = off
		st.record(migrations.StoredOffset{Topic: "events", Offset: off, Outcome: migrations.OutcomeDuplicate})
		return d
	}
	fresh := placed(5, row("ws_1", t0.Add(time.Second), "e3"))
	st.store(*fresh.Record)
	st.record(storedAt(fresh, fresh.Record.ReceivedAtNs))
	// A new sequencer (a takeover) knows the recent leaf from its load
	// and looks the old one up; e3's stored copy is in the round.
	s = newSequencer(st, func() time.Time { return t0 })
	// A resend of e3 with another timestamp is a duplicate of its id.
	other := fresh
	other.Key.TimestampNs++
	out, err = s.seal(context.Background(), []Item{dup(3, recent), dup(4, old), fresh, dup(6, fresh), dup(7, other)})
	require.NoError(t, err)
	require.Len(t, out.Leaves, 1, "e3 only")
	require.Equal(t, "e3", out.Leaves[0].ID)
	require.Equal(t, 4, out.Skipped)
	require.Zero(t, st.rowsRead, "nothing read back")
}
