package idwindow

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWindowForgetsByAgeAndBound(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	w := New(time.Hour, 3)
	id := func(ws, id string, ts int64, at time.Time) StoredID {
		return StoredID{WorkspaceID: ws, ID: id, TimestampNs: ts, StoredAt: at}
	}
	w.Add(t0, []StoredID{id("ws", "a", 1, t0), id("ws", "b", 2, t0.Add(time.Minute))})
	ts, ok := w.Lookup(KeyOf("ws", "a"))
	require.True(t, ok)
	require.Equal(t, int64(1), ts)
	_, ok = w.Lookup(KeyOf("other", "a"))
	require.False(t, ok, "ids are per workspace")

	w.Add(t0.Add(2*time.Minute), []StoredID{id("ws", "a", 9, t0.Add(2*time.Minute))})
	ts, _ = w.Lookup(KeyOf("ws", "a"))
	require.Equal(t, int64(1), ts, "the first stored version is kept")

	w.Add(t0.Add(3*time.Minute), []StoredID{id("ws", "c", 3, t0.Add(3*time.Minute)), id("ws", "d", 4, t0.Add(3*time.Minute))})
	require.Equal(t, 3, w.Size(), "bounded: the oldest goes first")
	_, ok = w.Lookup(KeyOf("ws", "a"))
	require.False(t, ok)
	require.Equal(t, 2*time.Minute, w.Reach(t0.Add(3*time.Minute)), "the bound forgot ids early")

	w.Add(t0.Add(time.Hour+2*time.Minute), nil)
	_, ok = w.Lookup(KeyOf("ws", "b"))
	require.False(t, ok, "past the window")
	_, ok = w.Lookup(KeyOf("ws", "c"))
	require.True(t, ok)
	require.Equal(t, time.Hour, w.Reach(t0.Add(time.Hour+2*time.Minute)), "under the bound: the whole window")
}

func TestAddCountsOnlyIDsTheBoundForgotEarly(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	w := New(time.Hour, 2)
	at := func(id string, d time.Duration) StoredID {
		return StoredID{WorkspaceID: "ws", ID: id, TimestampNs: 1, StoredAt: t0.Add(d)}
	}
	require.Zero(t, w.Add(t0, []StoredID{at("a", 0), at("b", time.Minute)}))
	require.Equal(t, 1, w.Add(t0.Add(2*time.Minute), []StoredID{at("c", 2*time.Minute)}), "a was inside the window")
	require.Zero(t, w.Add(t0.Add(2*time.Hour), nil), "b and c aged out: not counted")
	require.Zero(t, w.Size())
}

// TestClaimTakesNewIDsOnceAndReportsTheFirstTimestamp: a batch's new ids
// are claimed at once (a repeat within the batch is not new), known ids
// report the timestamp first stored, and claims are bounded like Add.
func TestClaimTakesNewIDsOnceAndReportsTheFirstTimestamp(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	w := New(time.Hour, 4)
	w.Add(t0, []StoredID{{WorkspaceID: "ws", ID: "a", TimestampNs: 1, StoredAt: t0}})
	claims := []Claim{
		{Key: KeyOf("ws", "a"), TimestampNs: 1}, // replayed
		{Key: KeyOf("ws", "a"), TimestampNs: 5}, // another version
		{Key: KeyOf("ws", "b"), TimestampNs: 2}, // new
		{Key: KeyOf("ws", "b"), TimestampNs: 2}, // repeated within the batch
		{Key: KeyOf("other", "b"), TimestampNs: 3},
	}
	require.Zero(t, w.Claim(t0.Add(time.Minute), claims))
	type outcome struct {
		New   bool
		First int64
	}
	var got []outcome
	for _, c := range claims {
		got = append(got, outcome{c.New, c.First})
	}
	require.Equal(t, []outcome{{false, 1}, {false, 1}, {true, 0}, {false, 2}, {true, 0}}, got)
	require.Equal(t, 3, w.Size())
	ts, ok := w.Lookup(KeyOf("other", "b"))
	require.True(t, ok)
	require.Equal(t, int64(3), ts)

	more := []Claim{{Key: KeyOf("ws", "c"), TimestampNs: 4}, {Key: KeyOf("ws", "d"), TimestampNs: 4}}
	require.Equal(t, 1, w.Claim(t0.Add(2*time.Minute), more), "the bound forgets the oldest id, still inside the window")
	_, ok = w.Lookup(KeyOf("ws", "a"))
	require.False(t, ok)
	require.Equal(t, 4, w.Size())
}

func TestKeyOfSeparatesWorkspaceAndID(t *testing.T) {
	require.Equal(t, KeyOf("ws", "a"), KeyOf("ws", "a"))
	require.NotEqual(t, KeyOf("ws", "ab"), KeyOf("wsa", "b"))
	long := string(make([]byte, 300)) // longer than the stack buffer
	require.Equal(t, KeyOf(long, "a"), KeyOf(long, "a"))
	require.NotEqual(t, KeyOf(long, "a"), KeyOf(long, "b"))
}
