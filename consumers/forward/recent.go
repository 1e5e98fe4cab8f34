package forward

import "sync"

// recentIDs remembers the events forwarded lately, per target kind and
// workspace, so that an event id sent again (a producer retry, or a resend
// with another timestamp) is not delivered twice while it is remembered.
// Memory is bounded: two generations of at most size keys; when the newer
// one fills up, the older one is forgotten. It is a best effort on top of
// the stable messageId (a restarted forwarder remembers nothing).
type recentIDs struct {
	mu        sync.Mutex
	size      int
	cur, prev map[string]struct{}
}

func newRecentIDs(size int) *recentIDs {
	return &recentIDs{size: size, cur: make(map[string]struct{}, size)}
}

// first records kind/ws/id and reports whether it was not seen before.
func (r *recentIDs) first(kind, ws, id string) bool {
	k := kind + "\x00" + ws + "\x00" + id
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.cur[k]; ok {
		return false
	}
	if _, ok := r.prev[k]; ok {
		return false
	}
	if len(r.cur) >= r.size {
		r.prev, r.cur = r.cur, make(map[string]struct{}, r.size)
	}
	r.cur[k] = struct{}{}
	return true
}
