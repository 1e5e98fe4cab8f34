// Package idwindow is the idempotency window the writer and the forwarder
// share.
//
// It is a bounded memory of event ids, (workspace_id, id) -> the
// timestamp_ns of the version first stored, and the id registry in
// ClickHouse (audit_event_ids) it is rebuilt from when a consumer is
// assigned a partition. The writer decides with it what to store; the
// forwarder reads the writer's registry with it so that it forwards the same
// first version the API shows.
package idwindow

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// StoredID is one stored event's id: a row of the registry, declared with
// its table (migrations.EventIDs).
type StoredID = migrations.StoredID

// RegistrySpan is how long the id registry keeps ids for a retention
// window of retentionDays (the retention window and a day): the longest
// window it can rebuild.
func RegistrySpan(retentionDays int) time.Duration {
	return time.Duration(migrations.IDsRetentionDays(retentionDays)) * 24 * time.Hour
}

// Window holds the ids stored within the last window, at most max of them,
// oldest forgotten first, each with the timestamp it was first stored
// with. Safe for concurrent use.
//
// Keys are 128-bit hashes of workspace and id, so the window holds no
// pointers and costs the garbage collector nothing to scan however large it
// grows (two different ids share a key with probability about n²/2¹²⁹).
type Window struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	ts     map[Key]int64 // key -> timestamp_ns it was first stored with
	order  []entry       // oldest first; order[head:] is live
	head   int
}

// Key identifies an event id in a workspace (see KeyOf).
type Key [2]uint64

type entry struct {
	key Key
	at  int64 // stored_at, unix nanoseconds
}

// Seeds of the key hash; fixed for the process, which is all the window
// needs (it is rebuilt from the registry, not saved).
var seedA, seedB = maphash.MakeSeed(), maphash.MakeSeed()

// New returns an empty window remembering ids for window, at most max.
func New(window time.Duration, max int) *Window {
	return &Window{window: window, max: max, ts: map[Key]int64{}}
}

// KeyOf is the window key of an event id in a workspace.
func KeyOf(ws, id string) Key {
	var buf [256]byte
	b := buf[:0]
	if n := len(ws) + 1 + len(id); n > len(buf) {
		b = make([]byte, 0, n)
	}
	b = append(append(append(b, ws...), 0), id...)
	return Key{maphash.Bytes(seedA, b), maphash.Bytes(seedB, b)}
}

// Lookup returns the timestamp the id was first stored with, if it is in
// the window.
func (w *Window) Lookup(key Key) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ts, ok := w.ts[key]
	return ts, ok
}

// Add remembers stored ids (an id already in the window keeps its first
// timestamp) and forgets those past the window or the bound. It returns
// how many ids it forgot because of the bound while they were still inside
// the window: from then on the window reaches back less far than
// configured (see Reach).
func (w *Window) Add(now time.Time, ids []StoredID) (evicted int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range ids {
		if k := KeyOf(ids[i].WorkspaceID, ids[i].ID); !w.hasLocked(k) {
			w.rememberLocked(k, ids[i].TimestampNs, ids[i].StoredAt.UnixNano())
		}
	}
	return w.forgetLocked(now)
}

// Claim is one id offered to Window.Claim.
type Claim struct {
	Key         Key
	TimestampNs int64
	// Set by Claim: New when the id was not in the window (it is now);
	// otherwise First is the timestamp it was first stored with.
	New   bool
	First int64
}

// Claim checks a batch of ids against the window and remembers the new
// ones at once, stored at now, under one lock: an id repeated within the
// batch is new only the first time. Claiming before the rows are stored
// is for a caller that stores them or stops trying only when it stops for
// good (the writer retries an insert until it succeeds or shuts down). It
// returns what Add returns.
func (w *Window) Claim(now time.Time, claims []Claim) (evicted int) {
	at := now.UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range claims {
		c := &claims[i]
		first, seen := w.ts[c.Key]
		c.New, c.First = !seen, first
		if !seen {
			w.rememberLocked(c.Key, c.TimestampNs, at)
		}
	}
	return w.forgetLocked(now)
}

// hasLocked reports whether the window holds k. Called with mu held.
func (w *Window) hasLocked(k Key) bool {
	_, ok := w.ts[k]
	return ok
}

// rememberLocked adds an id the window does not hold, first stored with
// timestamp ts at unix nanoseconds at. Called with mu held.
func (w *Window) rememberLocked(k Key, ts, at int64) {
	w.ts[k] = ts
	w.order = append(w.order, entry{key: k, at: at})
}

// forgetLocked forgets the ids past the window or the bound and returns
// how many were forgotten because of the bound while still inside the
// window. Called with mu held.
func (w *Window) forgetLocked(now time.Time) (evicted int) {
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

// Reach is how far back the window remembers: the age of the oldest id it
// holds, or the configured window when it holds none. Less than the
// configured window once the bound has forgotten ids early.
func (w *Window) Reach(now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.head == len(w.order) || len(w.order)-w.head < w.max {
		return w.window
	}
	return min(now.Sub(time.Unix(0, w.order[w.head].at)), w.window)
}

// Size is how many ids the window holds.
func (w *Window) Size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ts)
}

// Gauges returns two gauges read at each scrape:
// <prefix>_idempotency_window_ids (how many ids w holds) and
// <prefix>_idempotency_window_reach_seconds (Reach). maxVar names the
// setting that bounds w, for the help text.
func (w *Window) Gauges(prefix, maxVar string, now func() time.Time) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: prefix + "_idempotency_window_ids",
			Help: "Event ids in the idempotency window (each with the timestamp of its first stored version)."},
			func() float64 { return float64(w.Size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: prefix + "_idempotency_window_reach_seconds",
			Help: "How far back the idempotency window remembers ids: its configured span, or less once " + maxVar + " forgot ids early."},
			func() float64 { return w.Reach(now()).Seconds() }),
	}
}
