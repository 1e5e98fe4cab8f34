package sealer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// sampledRound stores and records n events of ws_1 (offsets from first)
// and returns their items.
func sampledRound(st *memStore, first, n int) []Item {
	var its []Item
	for i := range n {
		it := placed(int64(first+i), row("ws_1", t0.Add(time.Duration(first+i)*time.Millisecond), fmt.Sprintf("e%d", first+i)))
		st.store(*it.Record)
		st.record(storedAt(it, it.Record.ReceivedAtNs))
		its = append(its, it)
	}
	return its
}

// failingRows is a store whose read-back by key fails.
type failingRows struct{ *memStore }

func (failingRows) Rows(context.Context, []Key) (map[Key]migrations.Row, error) {
	return nil, errors.New("server gone")
}

// TestTheSampleFindsAStoredRowChangedAfterTheWriterStoredIt: with the
// sample covering the round, a row changed in the store is reported with
// its leaf (workspace, id, index), the leaf stays the record's, and the
// untouched rows match.
func TestTheSampleFindsAStoredRowChangedAfterTheWriterStoredIt(t *testing.T) {
	st := newMemStore()
	its := sampledRound(st, 0, 10)
	changed := *its[6].Record
	changed.ActorID = "usr_evil"
	st.store(changed)
	s := newSequencer(st, func() time.Time { return t0 })
	s.sampler = newSampler(10)
	out, err := s.seal(context.Background(), its)
	require.NoError(t, err)
	require.Len(t, out.Leaves, 10, "the round is sealed whatever the sample finds")
	require.Zero(t, st.rowsRead, "nothing read while sealing")
	sm := out.Sample.run(context.Background(), st)
	require.Equal(t, map[string]int{sampleMatch: 9, sampleAltered: 1}, sm.Results)
	require.Len(t, sm.Altered, 1)
	got := sm.Altered[0]
	require.Equal(t, "e6", got.ID)
	require.Equal(t, "ws_1", got.WorkspaceID)
	require.Equal(t, uint64(6), got.Index)
	h := leaf.Hash(its[6].Record)
	require.Equal(t, string(h[:]), got.Hash, "the leaf is the record's, not the changed row's")
	require.NoError(t, sm.Err)
	require.Equal(t, 10, st.rowsRead, "the sample's reads, and nothing else")
}

// TestAnUntouchedRoundRaisesNothing: every sampled row matches, across
// rounds with repeats and records not stored (which are never sampled).
func TestAnUntouchedRoundRaisesNothing(t *testing.T) {
	st := newMemStore()
	s := newSequencer(st, func() time.Time { return t0 })
	s.sampler = newSampler(1000)
	its := sampledRound(st, 0, 20)
	notStored := placed(100, row("ws_1", t0, "dead"))
	st.record(migrations.StoredOffset{Topic: "events", Offset: 100, Outcome: migrations.OutcomeDeadLettered})
	out, err := s.seal(context.Background(), append(its, notStored))
	require.NoError(t, err)
	require.Equal(t, map[string]int{sampleMatch: 20}, out.Sample.run(context.Background(), st).Results)
	out, err = s.seal(context.Background(), its[:5]) // a replay: no new leaves, nothing to sample
	require.NoError(t, err)
	require.Equal(t, 5, out.Repeats)
	sm := out.Sample.run(context.Background(), st)
	require.Empty(t, sm.Results)
	require.Empty(t, sm.Altered)
	require.Equal(t, 20, st.rowsRead)
}

// TestTheSampleIsBoundedAndRandom: a round reads back at most the
// sample's size, distinct rows, and which rows changes from round to
// round (every leaf position is chosen sometime).
func TestTheSampleIsBoundedAndRandom(t *testing.T) {
	st := newMemStore()
	s := newSequencer(st, func() time.Time { return t0 })
	s.sampler = newSampler(4)
	const rounds, size = 50, 40
	positions := map[int]bool{}
	for r := range rounds {
		before := st.rowsRead
		out, err := s.seal(context.Background(), sampledRound(st, r*size, size))
		require.NoError(t, err)
		require.Len(t, out.Leaves, size)
		require.Equal(t, map[string]int{sampleMatch: 4}, out.Sample.run(context.Background(), st).Results)
		require.Equal(t, 4, st.rowsRead-before, "round %d", r)
	}
	// Which positions were chosen: pick is what seal uses.
	from := make([]int, size)
	for i := range from {
		from[i] = i
	}
	for range rounds {
		got := s.sampler.pick(from)
		require.Len(t, got, 4)
		seen := map[int]bool{}
		for _, x := range got {
			require.False(t, seen[x], "distinct")
			seen[x] = true
			positions[x] = true
		}
	}
	require.Greater(t, len(positions), size/2, "the sample is not the same rows every round")
	require.ElementsMatch(t, []int{0, 1}, newSampler(5).pick([]int{0, 1}), "a round smaller than the sample is read whole")
	require.Nil(t, newSampler(0), "0 turns it off")
}

// TestAFailedSampleReadDoesNotHoldTheRound: the round is sealed and
// stored; the error is reported with the sample.
func TestAFailedSampleReadDoesNotHoldTheRound(t *testing.T) {
	st := newMemStore()
	its := sampledRound(st, 0, 3)
	s := newSequencer(failingRows{st}, func() time.Time { return t0 })
	s.sampler = newSampler(16)
	out, err := s.seal(context.Background(), its)
	require.NoError(t, err)
	require.Len(t, out.Leaves, 3)
	require.Len(t, st.leaves["ws_1"], 3, "stored")
	sm := out.Sample.run(context.Background(), failingRows{st})
	require.Error(t, sm.Err)
	require.Empty(t, sm.Results)
}

// TestRowsReadBackAreNotSampledAgain: a row the round read back (an older
// writer's record) was compared already; only the others are sampled.
func TestRowsReadBackAreNotSampledAgain(t *testing.T) {
	st := newMemStore()
	its := sampledRound(st, 0, 3)
	old := placed(50, row("ws_1", t0.Add(time.Second), "old"))
	st.store(*old.Record) // stored, not in the offsets record
	s := newSequencer(st, func() time.Time { return t0 })
	s.sampler = newSampler(16)
	out, err := s.seal(context.Background(), append(its, old))
	require.NoError(t, err)
	require.Len(t, out.Leaves, 4)
	require.Equal(t, map[string]int{readBackAbsent: 1}, out.ReadBack)
	require.Equal(t, map[string]int{sampleMatch: 3}, out.Sample.run(context.Background(), st).Results)
	require.Equal(t, 1+3, st.rowsRead, "the read-back's key, then the sample's three")
}

// TestCompareStored: only a stored row that differs from its leaf counts
// as altered; a missing row or a later identical copy does not.
func TestCompareStored(t *testing.T) {
	record := row("ws_1", t0, "e1")
	h := leaf.Hash(&record)
	with := func(f func(r *migrations.Row)) migrations.Row {
		r := record
		f(&r)
		return r
	}
	cases := []struct {
		name   string
		stored migrations.Row
		ok     bool
		want   string
	}{
		{"the same row", record, true, sampleMatch},
		{"not visible", migrations.Row{}, false, sampleAbsent},
		{"another actor", with(func(r *migrations.Row) { r.ActorID = "usr_evil" }), true, sampleAltered},
		{"other properties", with(func(r *migrations.Row) { r.Properties = `{"a":1}` }), true, sampleAltered},
		{"received earlier (forged)", with(func(r *migrations.Row) { r.ReceivedAtNs -= int64(time.Hour) }), true, sampleAltered},
		{"received later, same event (a resend stored again)", with(func(r *migrations.Row) {
			r.ReceivedAtNs += int64(time.Hour)
			r.ReceivedAt = time.Unix(0, r.ReceivedAtNs).UTC()
		}), true, sampleLaterCopy},
		{"received later and changed", with(func(r *migrations.Row) {
			r.ReceivedAtNs += int64(time.Hour)
			r.ActorName = "someone else"
		}), true, sampleAltered},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, compareStored(string(h[:]), &record, c.stored, c.ok))
		})
	}
	later := cases[5].stored
	require.Equal(t, sampleAltered, compareStored(string(h[:]), nil, later, true), "without the record, a later copy is not recognised")
}

// TestASampleCutShortByShutdownIsNoError: the round's leaves are stored
// (their inserts outlive the cancellation) and the sample reads nothing
// and reports no failure.
func TestASampleCutShortByShutdownIsNoError(t *testing.T) {
	st := newMemStore()
	its := sampledRound(st, 0, 3)
	s := newSequencer(cancelledRows{st}, func() time.Time { return t0 })
	s.sampler = newSampler(16)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := s.seal(ctx, its)
	require.NoError(t, err)
	require.Len(t, out.Leaves, 3)
	sm := out.Sample.run(ctx, cancelledRows{st})
	require.NoError(t, sm.Err)
	require.Empty(t, sm.Results)
}

// cancelledRows fails the read-back as a cancelled request does.
type cancelledRows struct{ *memStore }

func (cancelledRows) Rows(ctx context.Context, _ []Key) (map[Key]migrations.Row, error) {
	return nil, ctx.Err()
}

// TestCompareCopies: a key is altered when any of its unmerged copies is
// (a read may serve any of them), whatever the order of the copies.
func TestCompareCopies(t *testing.T) {
	record := row("ws_1", t0, "e1")
	h := leaf.Hash(&record)
	forged := record
	forged.ActorID = "usr_evil"
	later := record
	later.ReceivedAtNs += int64(time.Hour)
	later.ReceivedAt = time.Unix(0, later.ReceivedAtNs).UTC()
	for _, c := range []struct {
		name   string
		copies []migrations.Row
		want   string
	}{
		{"none", nil, sampleAbsent},
		{"one, equal", []migrations.Row{record}, sampleMatch},
		{"two equal", []migrations.Row{record, record}, sampleMatch},
		{"the original and a forged copy", []migrations.Row{record, forged}, sampleAltered},
		{"a forged copy and the original", []migrations.Row{forged, record}, sampleAltered},
		{"the original and a later identical copy", []migrations.Row{record, later}, sampleLaterCopy},
		{"a later copy and a forged one", []migrations.Row{later, forged}, sampleAltered},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, compareCopies(string(h[:]), &record, c.copies))
		})
	}
}
