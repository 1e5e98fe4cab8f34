package sealer_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// TestCompleteTilesGetSignedTileNotes, on Kafka and ClickHouse 18.16: the
// running sealer signs the tile notes of a workspace's complete tile
// (300 events: tile 0), with every leaf's event time as stored, bound to
// the tile's stored hash, and its newest note, whose text the stored row
// rebuilds.
func TestCompleteTilesGetSignedTileNotes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	defer s.writer()()
	defer s.sealer(nil)()
	s.traffic([]string{"ws_t"}, 300, "tiles")
	s.sealed([]string{"ws_t"}, 60*time.Second)
	v, err := note.NewVerifier(s.vkey)
	require.NoError(t, err)
	ctx := context.Background()
	var notes store.TileNotes
	require.Eventually(t, func() bool {
		notes, err = store.NewLog(s.conn, s.db).TileNotes(ctx, "ws_t")
		require.NoError(t, err)
		return len(notes.Times[0]) > 0 && len(notes.Newest[0]) > 0
	}, 30*time.Second, 50*time.Millisecond, "tile 0 is noted within a checkpoint round")
	require.Len(t, notes.Times, 1, "one complete tile")

	msg, err := note.Open([]byte(notes.Times[0][0]), note.VerifierList(v))
	require.NoError(t, err)
	tm, err := tilenote.ParseTimes(msg.Text)
	require.NoError(t, err)
	require.Equal(t, "ws_t", tm.Workspace)
	tileHash, err := sealer.NewClickHouseStore(s.conn, s.db).ReadHashes(ctx, "ws_t")([]int64{tlog.StoredHashIndex(tilenote.Height, 0)})
	require.NoError(t, err)
	require.Equal(t, tileHash[0], tm.Hash)
	leaves := s.leaves("ws_t")
	require.GreaterOrEqual(t, len(leaves), tilenote.Leaves)
	var newest int64
	for i, l := range leaves[:tilenote.Leaves] {
		require.Equal(t, l.ts/1e9, tm.Times[i], "leaf %d", i)
		newest = max(newest, l.ts/1e9)
	}

	stored := notes.Newest[0][0]
	require.Equal(t, newest, stored.Newest)
	text := tilenote.Newest{Tile: tm.Tile, Newest: stored.Newest}.Text()
	_, err = note.Open([]byte(text+"\n"+stored.Signature), note.VerifierList(v))
	require.NoError(t, err, "the newest note verifies from its row")
}
