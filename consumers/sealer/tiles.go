package sealer

// Tile notes (docs/integrity.md#provable-expiry): for each complete tile of
// 256 leaves, the sealer signs its leaves' event times and the newest of
// them (schemas/tilenote), so that a verifier can tell a leaf whose event
// expired by retention from one whose event was deleted. Times come from
// the rows the sealer hashed; those it no longer holds (a takeover in the
// middle of a tile) are read back and authenticated against the leaf and
// event hashes, and are 0 (unknown) when they cannot be.

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// maxTilesPerRound bounds the tiles of one log noted by one call, so that
// one log catching up does not hold a round for long (the next round goes
// on).
const maxTilesPerRound = 256

// maxTimes bounds the event times a log holds in memory for tiles not
// noted yet (while storing notes fails): past it, times are not kept and
// are read back, authenticated, when the tile is noted.
const maxTimes = 1 << 20

// noteTiles notes the complete tiles of every log held that has some not
// noted yet, right after they were sealed (not at checkpoint time, so a
// busy log never piles up times in memory). A failure is counted and
// retried at the next round.
func (s *Sealer) noteTiles(ctx context.Context) {
	for _, t := range s.seq.trees {
		if t.size>>tilenote.Height <= t.noted {
			continue
		}
		n, err := noteTiles(ctx, s.store, s.signer, s.cfg.Origin, t)
		s.m.tiles.Add(float64(n))
		if err != nil {
			s.m.errors.WithLabelValues("tile").Inc()
			s.log.Warn("tile notes not stored; retried at the next round", "workspace", t.ws, "noted", t.noted, "err", err)
		}
	}
}

// storedLeaf is the stored hash index of leaf i.
func storedLeaf(i int64) int64 { return tlog.StoredHashIndex(0, i) }

// noteTime remembers the event time of leaf index until its tile is
// noted (at most maxTimes of them). A time before 1970 is unknown (0).
func (t *tree) noteTime(index, timestampNs int64) {
	if index >= t.noted<<tilenote.Height && len(t.times) < maxTimes {
		t.times[index] = max(timestampNs/1e9, 0)
	}
}

// noteTiles signs with signer and stores the notes of t's complete tiles
// that have none yet (at most maxTilesPerRound), in tile order, forgets
// their times and returns how many it noted.
func noteTiles(ctx context.Context, store Store, signer note.Signer, origin string, t *tree) (int, error) {
	upto := min(t.size>>tilenote.Height, t.noted+maxTilesPerRound)
	if t.noted >= upto {
		return 0, nil
	}
	var times, newest []migrations.TileNote
	for k := t.noted; k < upto; k++ {
		tm, err := tileTimes(ctx, store, origin, t, k)
		if err != nil {
			return 0, fmt.Errorf("tile %d: %w", k, err)
		}
		n := tm.Newest()
		signedTimes, err := note.Sign(&note.Note{Text: tm.Text()}, signer)
		if err != nil {
			return 0, fmt.Errorf("sign tile %d: %w", k, err)
		}
		signedNewest, err := note.Sign(&note.Note{Text: n.Text()}, signer)
		if err != nil {
			return 0, fmt.Errorf("sign tile %d: %w", k, err)
		}
		// The times row's week is its newest known time: with unknown
		// times the note claims no newest, but its known times are kept
		// until the newest of them expired.
		known := time.Unix(knownNewest(tm), 0).UTC()
		times = append(times, migrations.TileNote{WorkspaceID: t.ws, Tile: uint64(k), Newest: known, Note: string(signedTimes)})
		// The newest row keeps only the signature: its text is rebuilt by
		// verifiers from the row and the tile's hash.
		newest = append(newest, migrations.TileNote{WorkspaceID: t.ws, Tile: uint64(k), Newest: time.Unix(n.Newest, 0).UTC(),
			Note: tilenote.Signature(signedNewest, n.Text())})
	}
	if err := store.SaveTileNotes(ctx, times, newest); err != nil {
		return 0, err
	}
	for k := t.noted; k < upto; k++ {
		for i := k << tilenote.Height; i < (k+1)<<tilenote.Height; i++ {
			delete(t.times, i)
		}
		delete(t.tileHashes, k)
	}
	t.noted = upto
	return len(times), nil
}

// NoteTiles signs and stores the tile notes of a workspace's log of size
// leaves from tile from on (tiles completed before a log's first note, or
// a backfill), reading every time back from ClickHouse and authenticating
// it. It returns how many tiles it noted.
func NoteTiles(ctx context.Context, store Store, signer note.Signer, origin, ws string, size, from int64) (int, error) {
	t := &tree{ws: ws, size: size, noted: from, times: map[int64]int64{}, tileHashes: map[int64]tlog.Hash{}}
	total := 0
	for t.noted < size>>tilenote.Height {
		n, err := noteTiles(ctx, store, signer, origin, t)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// knownNewest is the largest known time of a tile.
func knownNewest(tm tilenote.Times) int64 {
	var n int64
	for _, s := range tm.Times {
		n = max(n, s)
	}
	return n
}

// tileTimes returns the body of tile k's times note: the times held in
// memory, the others read back and authenticated, and the tile's hash.
func tileTimes(ctx context.Context, store Store, origin string, t *tree, k int64) (tilenote.Times, error) {
	tm := tilenote.Times{Tile: tilenote.Tile{Origin: origin, Workspace: t.ws, Index: k}}
	lo := k << tilenote.Height
	var unknown []int64
	for i := range int64(tilenote.Leaves) {
		if v, ok := t.times[lo+i]; ok {
			tm.Times[i] = v
		} else {
			unknown = append(unknown, lo+i)
		}
	}
	if len(unknown) > 0 {
		got, err := store.LeafTimes(ctx, t.ws, unknown)
		if err != nil {
			return tm, fmt.Errorf("read leaf times: %w", err)
		}
		for _, i := range unknown {
			tm.Times[i-lo] = got[i] // 0 when not authenticated
		}
	}
	h, ok := t.tileHashes[k]
	if !ok {
		hs, err := store.ReadHashes(ctx, t.ws)([]int64{tlog.StoredHashIndex(tilenote.Height, k)})
		if err != nil {
			return tm, fmt.Errorf("read the tile's hash: %w", err)
		}
		h = hs[0]
	}
	tm.Hash = h
	return tm, nil
}
