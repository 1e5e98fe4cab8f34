package verify

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// expiredFixture is a log of 600 events, one a minute, with the tile
// notes of its two complete tiles, whose first 300 events and leaf rows
// are gone, as retention leaves it with the window starting at event 300.
func expiredFixture(t *testing.T) (*fixture, []migrations.Row, OnlineOptions) {
	t.Helper()
	f := newFixture(t, 600)
	require.NoError(t, f.log.NoteTiles(f.key))
	var gone []int64
	for i := range 300 {
		gone = append(gone, int64(i))
	}
	f.log.Drop(gone...)
	return f, f.rows[300:], OnlineOptions{RetentionCut: f.rows[300].TimestampNs}
}

// TestOnlineProvesExpiryFromSignedTileNotes: with the sealer's tile notes,
// leaves whose events are gone and older than the window are expired, not
// missing, without -assume-retention: those of a whole tile and those of
// a tile still partly live.
func TestOnlineProvesExpiryFromSignedTileNotes(t *testing.T) {
	f, live, o := expiredFixture(t)
	rep := f.onlineWith(t, live, o)
	require.Empty(t, rep.Problems)
	require.Equal(t, []string{"300 leaves expired by retention (their event times, signed in the sealer's tile notes, are older than the window)"}, rep.Notes)

	// Once a tile's times note went with its week, its newest note proves
	// the whole tile.
	notes := must(f.log.TileNotes(context.Background(), "ws_1"))
	delete(notes.Times, 0)
	f.log.SetTileNotes(notes)
	rep = f.onlineWith(t, live, o)
	require.Empty(t, rep.Problems)
	require.Equal(t, []string{"300 leaves expired by retention (their event times, signed in the sealer's tile notes, are older than the window)"}, rep.Notes)
}

// TestOnlineExpiryCannotHideADeletion: an event deleted inside the window
// is missing whatever the notes; a note that does not verify, names
// another tile or workspace, or comes with a tree that does not match its
// root proves nothing.
func TestOnlineExpiryCannotHideADeletion(t *testing.T) {
	deleted, live, o := expiredFixture(t)
	deleted.log.Drop(400)
	rep := deleted.onlineWith(t, append(append([]migrations.Row(nil), live[:100]...), live[101:]...), o)
	require.Equal(t, []string{"1 leaves: missing with their leaf rows (removed, or expired by retention: not provable)"}, rep.Problems)

	f, live, o := expiredFixture(t)
	notes := must(f.log.TileNotes(context.Background(), "ws_1"))
	other, err := logtest.NewKey(origin) // same name, another key
	require.NoError(t, err)
	for name, forged := range map[string]store.TileNotes{
		"signed by another key": signedBy(t, f, other),
		"tile 1's notes as tile 0's": {Times: map[int64][]string{0: notes.Times[1], 1: notes.Times[1]},
			Newest: map[int64][]store.NewestNote{0: notes.Newest[1], 1: notes.Newest[1]}},
		"another workspace's notes": otherWorkspace(t, f),
	} {
		f.log.SetTileNotes(forged)
		rep := f.onlineWith(t, live, o)
		require.NotEmpty(t, rep.Problems, name)
		require.Contains(t, rep.Problems[0], "missing with their leaf rows", name)
	}

	// Notes of a tree rewritten under its notes: the root does not match,
	// and nothing is taken for expired.
	f.log.SetTileNotes(notes)
	altered := append([]migrations.Row(nil), live...)
	altered[10].ActorID = "usr_attacker"
	rep = f.onlineWith(t, altered, o)
	require.Contains(t, rep.Problems, "300 leaves: missing with their leaf rows (removed, or expired by retention: not provable)")
}

// signedBy returns the fixture's tile notes signed by another key.
func signedBy(t *testing.T, f *fixture, k logtest.Key) store.TileNotes {
	t.Helper()
	keep := must(f.log.TileNotes(context.Background(), "ws_1"))
	require.NoError(t, f.log.NoteTiles(k))
	forged := must(f.log.TileNotes(context.Background(), "ws_1"))
	f.log.SetTileNotes(keep)
	return forged
}

// otherWorkspace returns the tile notes of a log of the same events in
// workspace ws_2, signed with the fixture's key.
func otherWorkspace(t *testing.T, f *fixture) store.TileNotes {
	t.Helper()
	l := logtest.New(origin, "ws_2")
	for _, r := range f.rows {
		l.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
	}
	require.NoError(t, l.NoteTiles(f.key))
	return must(l.TileNotes(context.Background(), "ws_2"))
}

// TestOnlineExpiryFromSeveralNotesOfATile: a tile noted twice (after a
// takeover the sealer could not authenticate a time the first time, or
// the other way round) is proven by what the notes know together; a note
// that gives a leaf another time than the other makes that leaf unproven,
// and a newest of 0 does not hide a known one.
func TestOnlineExpiryFromSeveralNotesOfATile(t *testing.T) {
	f, live, o := expiredFixture(t)
	notes := must(f.log.TileNotes(context.Background(), "ws_1"))
	msg, err := note.Open([]byte(notes.Times[0][0]), f.vs)
	require.NoError(t, err)
	tm := must(tilenote.ParseTimes(msg.Text))
	sign := func(tm tilenote.Times) string {
		b, err := note.Sign(&note.Note{Text: tm.Text()}, f.key.Signer)
		require.NoError(t, err)
		return string(b)
	}
	unknown := tm
	unknown.Times[5] = 0
	// The unknown note first: the other completes it; the newest note of
	// the unknown one (0) does not hide the known one.
	zero := tilenote.Newest{Tile: tm.Tile}
	zeroSig, err := note.Sign(&note.Note{Text: zero.Text()}, f.key.Signer)
	require.NoError(t, err)
	notes.Times[0] = []string{sign(unknown), notes.Times[0][0]}
	notes.Newest[0] = append([]store.NewestNote{{Newest: 0, Signature: tilenote.Signature(zeroSig, zero.Text())}}, notes.Newest[0]...)
	f.log.SetTileNotes(notes)
	rep := f.onlineWith(t, live, o)
	require.Empty(t, rep.Problems)
	require.Equal(t, []string{"300 leaves expired by retention (their event times, signed in the sealer's tile notes, are older than the window)"}, rep.Notes)

	// Two signed times for leaf 5, and no newest to fall back on: leaf 5
	// is not proven.
	other := tm
	other.Times[5]--
	notes.Times[0] = []string{notes.Times[0][1], sign(other)}
	delete(notes.Newest, 0)
	f.log.SetTileNotes(notes)
	rep = f.onlineWith(t, live, o)
	require.Equal(t, []string{"1 leaves: missing with their leaf rows (removed, or expired by retention: not provable)"}, rep.Problems)
}
