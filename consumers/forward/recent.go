package forward

// Memory of the event ids delivered lately, per target kind and workspace.

import (
	"hash/maphash"
	"sync"
)

// recentIDs remembers the events delivered (or dead-lettered) lately, per
// target kind and workspace, so that an event id sent again (a producer
// retry, or a resend with another timestamp) is not delivered twice while
// it is remembered. An id is remembered only once its event is finished
// for good: an event read but not delivered (its partition was revoked, or
// the instance is stopping) is delivered when it is read again. Memory is
// bounded: two generations of at most size keys; when the newer one fills
// up, the older one is forgotten. It is a best effort on top of the stable
// messageId (a restarted forwarder remembers nothing); resends with another
// timestamp are also caught beyond it, by the first versions the forwarder
// remembers (Forwarder.firsts, loaded from the writer's id registry).
//
// Keys are 128-bit hashes of kind, workspace and id with seeds of the
// process, as in the first-version window (idwindow.Window): adding one
// allocates nothing, and the maps hold no pointers, so the garbage
// collector does not scan them however full they are. Two different ids
// share a key with probability about n²/2¹²⁹ for n remembered.
type recentIDs struct {
	mu        sync.Mutex
	size      int
	cur, prev map[recentKey]struct{}
}

// recentKey identifies kind/ws/id (see keyOf).
type recentKey [2]uint64

var recentSeedA, recentSeedB = maphash.MakeSeed(), maphash.MakeSeed()

func keyOf(kind, ws, id string) recentKey {
	// Built in a buffer on the stack when short.
	var buf [128]byte
	b := append(append(append(append(append(buf[:0], kind...), 0), ws...), 0), id...)
	return recentKey{maphash.Bytes(recentSeedA, b), maphash.Bytes(recentSeedB, b)}
}

func newRecentIDs(size int) *recentIDs {
	return &recentIDs{size: size, cur: make(map[recentKey]struct{}, size)}
}

// seen reports whether kind/ws/id is remembered.
func (r *recentIDs) seen(kind, ws, id string) bool {
	k := keyOf(kind, ws, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cur[k]; ok {
		return true
	}
	_, ok := r.prev[k]
	return ok
}

// add remembers kind/ws/id.
func (r *recentIDs) add(kind, ws, id string) {
	k := keyOf(kind, ws, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cur[k]; ok {
		return
	}
	if len(r.cur) >= r.size {
		r.prev, r.cur = r.cur, make(map[recentKey]struct{}, r.size)
	}
	r.cur[k] = struct{}{}
}
