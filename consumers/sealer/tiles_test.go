package sealer

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// sealEvents seals n events of ws, event i at base + i seconds minus a
// backdating of (i%7) hours, in batches of 100, and returns their keys.
func sealEvents(t *testing.T, s *sequencer, st *memStore, ws string, from, n int) []Key {
	t.Helper()
	var keys []Key
	for i := from; i < from+n; i++ {
		at := t0.Add(time.Duration(i)*time.Second - time.Duration(i%7)*time.Hour)
		keys = append(keys, st.store(row(ws, at, fmt.Sprintf("ev-%d", i))))
	}
	for lo := 0; lo < len(keys); lo += 100 {
		_, err := s.seal(context.Background(), items(keys[lo:min(lo+100, len(keys))]...))
		require.NoError(t, err)
	}
	return keys
}

// openTimes opens tile notes with the verifier and returns their bodies.
func openTimes(t *testing.T, notes []migrations.TileNote, v note.Verifier) map[uint64]tilenote.Times {
	t.Helper()
	out := map[uint64]tilenote.Times{}
	for _, n := range notes {
		msg, err := note.Open([]byte(n.Note), note.VerifierList(v))
		require.NoError(t, err)
		tm, err := tilenote.ParseTimes(msg.Text)
		require.NoError(t, err)
		require.Equal(t, int64(n.Tile), tm.Index)
		out[n.Tile] = tm
	}
	return out
}

// TestTileNotesSignTheEventTimesOfCompleteTiles: each complete tile gets a
// signed note of its leaves' event times, bound to the tile's stored hash,
// and one of the newest; the open tile gets none; a sealer that takes the
// log over in the middle of a tile reads the times it lacks back; a leaf
// row rewritten in ClickHouse gets an unknown time, and its tile no newest.
func TestTileNotesSignTheEventTimesOfCompleteTiles(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "test.local")
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	verifier, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	ctx := context.Background()
	st := newMemStore()
	now := func() time.Time { return t0 }

	s := newSequencer(st, now)
	keys := sealEvents(t, s, st, "ws_1", 0, 600)
	n, err := noteTiles(ctx, st, signer, "audittrail.test", s.trees["ws_1"])
	require.NoError(t, err)
	require.Equal(t, 2, n, "600 leaves: two complete tiles")
	require.Len(t, st.tileNewest, 2)

	// A new owner takes over in the middle of tile 2 (leaves 512..599 were
	// sealed by the old one) and seals the rest of it.
	s = newSequencer(st, now)
	keys = append(keys, sealEvents(t, s, st, "ws_1", 600, 200)...)
	// A leaf row of tile 2 sealed by the old owner is rewritten: its time
	// cannot be authenticated.
	forged := st.leaves["ws_1"][520]
	forged.TimestampNs -= int64(365 * 24 * time.Hour)
	st.leaves["ws_1"][520] = forged
	n, err = noteTiles(ctx, st, signer, "audittrail.test", s.trees["ws_1"])
	require.NoError(t, err)
	require.Equal(t, 1, n, "800 leaves: the third tile")
	n, err = noteTiles(ctx, st, signer, "audittrail.test", s.trees["ws_1"])
	require.NoError(t, err)
	require.Zero(t, n, "noted once")

	times := openTimes(t, st.tileTimes, verifier)
	require.Len(t, times, 3)
	for k, tm := range times {
		require.Equal(t, "ws_1", tm.Workspace)
		want, err := st.hashReader("ws_1")([]int64{tlog.StoredHashIndex(tilenote.Height, int64(k))})
		require.NoError(t, err)
		require.Equal(t, want[0], tm.Hash, "tile %d is bound to its stored hash", k)
		for i, got := range tm.Times {
			index := int64(k)*tilenote.Leaves + int64(i)
			if index == 520 {
				require.Zero(t, got, "a rewritten leaf row has no time")
				continue
			}
			l := st.leaves["ws_1"][uint64(index)]
			require.Equal(t, l.TimestampNs/1e9, got, "leaf %d", index)
		}
	}
	for _, nn := range st.tileNewest {
		// The row keeps the signature; the text is rebuilt from the row
		// and the tile's hash, as verifiers do.
		text := tilenote.Newest{Tile: times[nn.Tile].Tile, Newest: nn.Newest.Unix()}.Text()
		_, err := note.Open([]byte(text+"\n"+nn.Note), note.VerifierList(verifier))
		require.NoError(t, err, "tile %d", nn.Tile)
		if nn.Tile == 2 {
			require.Zero(t, nn.Newest.Unix(), "a tile with an unknown time has no newest")
			continue
		}
		require.Equal(t, knownNewest(times[nn.Tile]), nn.Newest.Unix())
	}
	require.Len(t, keys, 800)
}

// TestALogSealedBeforeTileNotesStartsAtItsNextTile: a log loaded with
// complete tiles and no notes (sealed before notes existed) notes only
// the tiles completed from then on.
func TestALogSealedBeforeTileNotesStartsAtItsNextTile(t *testing.T) {
	skey, _, err := note.GenerateKey(rand.Reader, "test.local")
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	st := newMemStore()
	now := func() time.Time { return t0 }
	sealEvents(t, newSequencer(st, now), st, "ws_1", 0, 300)
	s := newSequencer(st, now)
	sealEvents(t, s, st, "ws_1", 300, 300)
	n, err := noteTiles(context.Background(), st, signer, "audittrail.test", s.trees["ws_1"])
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.EqualValues(t, 1, st.tileNewest[0].Tile, "tile 0 was complete before the first note")
}
