package writer

import (
	"hash/maphash"
	"sync"
	"time"
)

// StoredID is one stored event's id in the registry.
type StoredID struct {
	Topic       string
	Partition   int32
	StoredAt    time.Time
	WorkspaceID string
	ID          string
	TimestampNs int64
}

// idWindow is the writer's idempotency window: the ids it (or the previous
// owner of its partitions) stored within the last window, at most max of
// them, oldest forgotten first. An event whose (workspace_id, id) is in the
// window is not stored again. Safe for concurrent use.
//
// Keys are 128-bit hashes of workspace and id, so the window holds no
// pointers and costs the garbage collector nothing to scan however large it
// grows (two different ids share a key with probability about n²/2¹²⁹).
type idWindow struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	ts     map[idHash]int64 // key -> timestamp_ns it was stored with
	order  []windowEntry    // oldest first; order[head:] is live
	head   int
}

type idHash [2]uint64

type windowEntry struct {
	key idHash
	at  int64 // stored_at, unix nanoseconds
}

// Seeds of the key hash; fixed for the process, which is all the window
// needs (it is rebuilt from the registry, not saved).
var seedA, seedB = maphash.MakeSeed(), maphash.MakeSeed()

func newIDWindow(window time.Duration, max int) *idWindow {
	return &idWindow{window: window, max: max, ts: map[idHash]int64{}}
}

// idKey is the window key of an event id in a workspace.
func idKey(ws, id string) idHash {
	var h1, h2 maphash.Hash
	h1.SetSeed(seedA)
	h2.SetSeed(seedB)
	for _, h := range []*maphash.Hash{&h1, &h2} {
		_, _ = h.WriteString(ws)
		_ = h.WriteByte(0)
		_, _ = h.WriteString(id)
	}
	return idHash{h1.Sum64(), h2.Sum64()}
}

// lookup returns the timestamp the id was stored with, if it is in the
// window.
func (w *idWindow) lookup(key idHash) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ts, ok := w.ts[key]
	return ts, ok
}

// add remembers stored ids and forgets those past the window or the bound.
// It returns how many ids it forgot because of the bound while they were
// still inside the window: from then on the window reaches back less far
// than configured (see reach).
func (w *idWindow) add(now time.Time, ids []StoredID) (evicted int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range ids {
		k := idKey(ids[i].WorkspaceID, ids[i].ID)
		if _, ok := w.ts[k]; ok {
			continue
		}
		w.ts[k] = ids[i].TimestampNs
		w.order = append(w.order, windowEntry{key: k, at: ids[i].StoredAt.UnixNano()})
	}
	cutoff := now.Add(-w.window).UnixNano()
	for w.head < len(w.order) && (len(w.order)-w.head > w.max || w.order[w.head].at < cutoff) {
		if w.order[w.head].at >= cutoff {
			evicted++
		}
		delete(w.ts, w.order[w.head].key)
		w.head++
	}
	if w.head > 1024 && w.head > len(w.order)/2 { // reclaim the forgotten prefix
		w.order = append(w.order[:0:0], w.order[w.head:]...)
		w.head = 0
	}
	return evicted
}

// reach is how far back the window remembers: the age of the oldest id it
// holds, or the configured window when it holds none. Less than the
// configured window once the bound has forgotten ids early.
func (w *idWindow) reach(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.head == len(w.order) || len(w.order)-w.head < w.max {
		return w.window
	}
	return min(now.Sub(time.Unix(0, w.order[w.head].at)), w.window)
}

// size is how many ids the window holds.
func (w *idWindow) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ts)
}
