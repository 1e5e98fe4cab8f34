package store

// A bounded cache of parts' event counts per 15-minute slot.

import (
	"container/list"
	"crypto/sha256"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSlotCacheEntries and DefaultSlotCacheBytes bound the slot cache
// when the store is not given bounds (WithSlotCache).
const (
	DefaultSlotCacheEntries = 20_000   // as AUDITTRAIL_TIMELINE_CACHE_ENTRIES
	DefaultSlotCacheBytes   = 64 << 20 // as AUDITTRAIL_TIMELINE_CACHE_BYTES
)

// maxEdgeKeys is the most keys a part's first or last second holds for
// its counts to be cached: a part with more (many events in one second,
// as a bulk import with second-resolution times makes) is counted on
// every request instead, so an entry stays small whatever a producer
// writes.
const maxEdgeKeys = 64

// workspaceShare is the part of the cache's entries and bytes one
// workspace's entries may take: past it, the workspace's own least
// recently used entries are dropped first, so that one workspace (a
// tenant with many filters) cannot push the others' entries out.
const workspaceShare = 8 // one eighth

// slotKey names one cached count: a part's content (partID) and the rows
// of it counted, those of a workspace matching a condition (a 128-bit
// hash of the filters' SQL and arguments, without time bounds).
type slotKey struct {
	part      partID
	workspace string
	cond      [16]byte
}

// condHash is the key's hash of a condition's text.
func condHash(cond string) [16]byte {
	sum := sha256.Sum256([]byte(cond))
	return [16]byte(sum[:16])
}

// slotCount is how many rows of a part lie in one slot.
type slotCount struct {
	slot int32
	n    uint32
}

// partCounts are a part's counted rows: how many lie in each slot (by
// slot, slots without rows left out), and the keys of those in its first
// and its last second, where it may share a second with another part.
type partCounts struct {
	slots       []slotCount
	first, last []key
}

// slotEntry is a cached count, in the cache's order and its workspace's.
type slotEntry struct {
	key     slotKey
	counts  partCounts
	size    int64
	inOrder *list.Element
	inWs    *list.Element
}

// entryBytes is about what an entry of k and counts holds in memory: the
// slots, the edge keys (at most maxEdgeKeys each), the key's strings and
// the maps' and lists' overhead.
func entryBytes(k slotKey, counts partCounts) int64 {
	n := int64(len(counts.slots))*8 + int64(len(k.part.table)+len(k.part.name)+2*len(k.workspace)) + 400
	for _, e := range [][]key{counts.first, counts.last} {
		for _, k := range e {
			n += 24 + int64(len(k.id))
		}
	}
	return n
}

// wsEntries are one workspace's entries, most recently used first.
type wsEntries struct {
	order *list.List // of *slotEntry
	size  int64
}

// slotCache holds counts of immutable parts, least recently used dropped
// first past max entries or maxBytes bytes, and a workspace's own first
// past its share (workspaceShare). Parts never change, so an entry never
// turns stale: it is left unused once its part is gone (merged or
// dropped) and falls out. Safe for concurrent use.
type slotCache struct {
	// minRows is the fewest rows a part has for its counts to be cached
	// (minCachedPartRows; tests lower it).
	minRows uint64

	mu       sync.Mutex
	max      int
	maxBytes int64
	order    *list.List // of *slotEntry, most recently used first
	byKey    map[slotKey]*slotEntry
	byWs     map[string]*wsEntries
	size     int64

	hits, misses   prometheus.Counter
	entries, bytes prometheus.Gauge
}

// newSlotCache returns a cache of at most max entries and maxBytes
// bytes, its metrics registered on reg (when not nil).
func newSlotCache(max int, maxBytes int64, reg prometheus.Registerer) *slotCache {
	c := &slotCache{
		minRows: minCachedPartRows, max: max, maxBytes: maxBytes, order: list.New(),
		byKey: map[slotKey]*slotEntry{}, byWs: map[string]*wsEntries{},
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_api_slot_cache_hits_total",
			Help: "Parts whose counts per 15-minute slot a timeline took from the cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_api_slot_cache_misses_total",
			Help: "Parts whose counts per 15-minute slot a timeline did not find in the cache and counted (cached when small enough and still active after the count).",
		}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audittrail_api_slot_cache_entries",
			Help: "Parts' counts per 15-minute slot held (per part, workspace and filter).",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "audittrail_api_slot_cache_bytes",
			Help: "About the memory the slot cache's entries hold.",
		}),
	}
	if reg != nil {
		reg.MustRegister(c.hits, c.misses, c.entries, c.bytes)
	}
	return c
}

// get returns the counts of k, and whether they are cached.
func (c *slotCache) get(k slotKey) (partCounts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		c.misses.Inc()
		return partCounts{}, false
	}
	c.hits.Inc()
	c.order.MoveToFront(e.inOrder)
	c.byWs[k.workspace].order.MoveToFront(e.inWs)
	return e.counts, true
}

// cacheable reports whether counts may be cached: their edges hold at
// most maxEdgeKeys keys each.
func cacheable(counts partCounts) bool {
	return len(counts.first) <= maxEdgeKeys && len(counts.last) <= maxEdgeKeys
}

// put caches counts (by slot) under k, unless they are not cacheable.
func (c *slotCache) put(k slotKey, counts partCounts) {
	if !cacheable(counts) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e.inOrder)
		c.byWs[k.workspace].order.MoveToFront(e.inWs)
		return
	}
	ws := c.byWs[k.workspace]
	if ws == nil {
		ws = &wsEntries{order: list.New()}
		c.byWs[k.workspace] = ws
	}
	e := &slotEntry{key: k, counts: counts, size: entryBytes(k, counts)}
	e.inOrder, e.inWs = c.order.PushFront(e), ws.order.PushFront(e)
	c.byKey[k] = e
	c.size += e.size
	ws.size += e.size
	// The workspace's own entries first, past its share; then anyone's.
	for ws.order.Len() > 1 && (ws.order.Len() > max(c.max/workspaceShare, 1) || ws.size > c.maxBytes/workspaceShare) {
		c.remove(ws.order.Back().Value.(*slotEntry))
	}
	for c.order.Len() > 0 && (c.order.Len() > c.max || c.size > c.maxBytes) {
		c.remove(c.order.Back().Value.(*slotEntry))
	}
	c.entries.Set(float64(c.order.Len()))
	c.bytes.Set(float64(c.size))
}

// remove drops e; c.mu is held.
func (c *slotCache) remove(e *slotEntry) {
	ws := c.byWs[e.key.workspace]
	c.order.Remove(e.inOrder)
	ws.order.Remove(e.inWs)
	delete(c.byKey, e.key)
	c.size -= e.size
	ws.size -= e.size
	if ws.order.Len() == 0 {
		delete(c.byWs, e.key.workspace)
	}
}

// purge drops the entries of table's parts (a table made again).
func (c *slotCache) purge(table string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.byKey {
		if k.part.table == table {
			c.remove(e)
		}
	}
	c.entries.Set(float64(c.order.Len()))
	c.bytes.Set(float64(c.size))
}
