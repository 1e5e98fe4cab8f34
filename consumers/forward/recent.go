package forward

// Memory of the event ids delivered lately, per target kind and workspace.

import "sync"

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
type recentIDs struct {
	mu        sync.Mutex
	size      int
	cur, prev map[string]struct{}
}

func newRecentIDs(size int) *recentIDs {
	return &recentIDs{size: size, cur: make(map[string]struct{}, size)}
}

func recentKey(kind, ws, id string) string { return kind + "\x00" + ws + "\x00" + id }

// seen reports whether kind/ws/id is remembered.
func (r *recentIDs) seen(kind, ws, id string) bool {
	// The key is built in a buffer of its own (on the stack when short):
	// looking a map up by string(bytes) does not copy them.
	var buf [128]byte
	k := append(append(append(append(append(buf[:0], kind...), 0), ws...), 0), id...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cur[string(k)]; ok {
		return true
	}
	_, ok := r.prev[string(k)]
	return ok
}

// add remembers kind/ws/id.
func (r *recentIDs) add(kind, ws, id string) {
	k := recentKey(kind, ws, id)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cur[k]; ok {
		return
	}
	if len(r.cur) >= r.size {
		r.prev, r.cur = r.cur, make(map[string]struct{}, r.size)
	}
	r.cur[k] = struct{}{}
}
