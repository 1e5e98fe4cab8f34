package verify

// Provable expiry (docs/integrity.md#provable-expiry): a leaf whose event
// the store no longer holds expired by retention when the sealer's signed
// tile notes say its event time is older than the window. A note counts
// only when its signature verifies with a checkpoint key, it names this
// deployment's origin and workspace, and its tile hash is the hash of that
// tile in the tree that matched the signed roots.

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// expiry holds the authenticated event times of tiles. Its zero value and
// nil prove nothing.
type expiry struct {
	times  map[int64]tilenote.Times
	newest map[int64]int64
	// cut (Unix seconds): an event time before it is outside the window.
	cut int64
}

// expired says whether leaf i's event time is proven older than the
// window: its own time in its tile's times note, or its tile's newest.
func (x *expiry) expired(i int64) bool {
	if x == nil {
		return false
	}
	k := i / tilenote.Leaves
	if tm, ok := x.times[k]; ok {
		if t := tm.Times[i%tilenote.Leaves]; t > 0 && t < x.cut {
			return true
		}
	}
	n, ok := x.newest[k]
	return ok && n > 0 && n < x.cut
}

// loadExpiry reads the workspace's tile notes and keeps those that prove
// something about complete tiles below size. Call it after checkRoot
// matched: the tile hashes come from the recomputed tree.
func (w *walk) loadExpiry(ctx context.Context, src Source, o OnlineOptions, size int64) (*expiry, error) {
	notes, err := src.TileNotes(ctx, o.WorkspaceID)
	if err != nil {
		return nil, fmt.Errorf("read tile notes: %w", err)
	}
	x := &expiry{times: map[int64]tilenote.Times{}, newest: map[int64]int64{}, cut: o.RetentionCut / 1e9}
	complete := size / tilenote.Leaves
	for k, texts := range notes.Times {
		if k >= complete {
			continue
		}
		for _, text := range texts {
			if tm, ok := w.openTimes(text, o, k); ok {
				x.addTimes(k, tm)
			}
		}
	}
	for k, stored := range notes.Newest {
		if k >= complete {
			continue
		}
		for _, n := range stored {
			if w.openNewest(n, o, k) {
				x.addNewest(k, n.Newest)
			}
		}
	}
	return x, nil
}

// addTimes takes a valid times note of tile k. Several valid notes of one
// tile (signed again after a takeover) complete each other: a time one
// leaves unknown (0) another may know; two that give a leaf different
// times make it unknown (the sealer never signs two, so neither is taken).
func (x *expiry) addTimes(k int64, tm tilenote.Times) {
	have, ok := x.times[k]
	if !ok {
		x.times[k] = tm
		return
	}
	for i, t := range tm.Times {
		switch {
		case have.Times[i] == 0:
			have.Times[i] = t
		case t != 0 && t != have.Times[i]:
			have.Times[i] = -1 // conflicting signed times: unknown
		}
	}
	x.times[k] = have
}

// addNewest takes the newest time of a valid newest note of tile k, as
// addTimes does its times.
func (x *expiry) addNewest(k, newest int64) {
	have, ok := x.newest[k]
	switch {
	case !ok || have == 0:
		x.newest[k] = newest
	case newest != 0 && newest != have:
		x.newest[k] = -1
	}
}

// openBody verifies a signed note with the checkpoint keys and returns
// its text.
func openBody(text string, known note.Verifiers) (string, bool) {
	msg, err := note.Open([]byte(text), known)
	if err != nil {
		return "", false
	}
	return msg.Text, true
}

// bound says whether a note's tile is tile k of this workspace under this
// origin, with the tile's authenticated hash.
func (w *walk) bound(t tilenote.Tile, o OnlineOptions, k int64) bool {
	lo := k * tilenote.Leaves
	return t.Origin == o.Origin && t.Workspace == o.WorkspaceID && t.Index == k && t.Hash == w.node(lo, lo+tilenote.Leaves)
}

func (w *walk) openTimes(text string, o OnlineOptions, k int64) (tilenote.Times, bool) {
	body, ok := openBody(text, o.Known)
	if !ok {
		return tilenote.Times{}, false
	}
	tm, err := tilenote.ParseTimes(body)
	return tm, err == nil && w.bound(tm.Tile, o, k)
}

// openNewest verifies a stored tile-newest note: its text is rebuilt from
// the tile's authenticated hash and the stored newest time, so the
// signature binds both.
func (w *walk) openNewest(n store.NewestNote, o OnlineOptions, k int64) bool {
	lo := k * tilenote.Leaves
	body := tilenote.Newest{Tile: tilenote.Tile{Origin: o.Origin, Workspace: o.WorkspaceID, Index: k, Hash: w.node(lo, lo+tilenote.Leaves)},
		Newest: n.Newest}.Text()
	_, ok := openBody(body+"\n"+n.Signature, o.Known)
	return ok
}
