package store

// A bounded cache of parts' event counts per 15-minute slot.

import (
	"container/list"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSlotCacheEntries is the slot cache's size when the store is not
// given one (WithSlotCache).
const DefaultSlotCacheEntries = 20_000 // as AUDITTRAIL_TIMELINE_CACHE_ENTRIES

// slotKey names one cached count: a part's content (partID) and the rows
// of it counted, those of a workspace matching a condition (the filters'
// SQL and arguments, without time bounds).
type slotKey struct {
	part      partID
	workspace string
	cond      string
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

// slotEntry is a cached count.
type slotEntry struct {
	key    slotKey
	counts partCounts
}

// bytes is about what the entry holds in memory.
func (e *slotEntry) bytes() int64 {
	n := int64(len(e.counts.slots))*8 + int64(len(e.key.part.table)+len(e.key.part.name)+len(e.key.workspace)+len(e.key.cond)) + 200
	for _, k := range slices.Concat(e.counts.first, e.counts.last) {
		n += 24 + int64(len(k.id))
	}
	return n
}

// slotCache holds counts of immutable parts, least recently used dropped
// first past max entries. Parts never change, so an entry never turns
// stale: it is left unused once its part is gone (merged or dropped) and
// falls out. Safe for concurrent use.
type slotCache struct {
	// minRows is the fewest rows a part has for its counts to be cached
	// (minCachedPartRows; tests lower it).
	minRows uint64

	mu    sync.Mutex
	max   int
	order *list.List // of *slotEntry, most recently used first
	byKey map[slotKey]*list.Element
	size  int64

	hits, misses   prometheus.Counter
	entries, bytes prometheus.Gauge
}

// newSlotCache returns a cache of at most max entries, its metrics
// registered on reg (when not nil).
func newSlotCache(max int, reg prometheus.Registerer) *slotCache {
	c := &slotCache{
		minRows: minCachedPartRows, max: max, order: list.New(), byKey: map[slotKey]*list.Element{},
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_api_slot_cache_hits_total",
			Help: "Parts whose counts per 15-minute slot a timeline took from the cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_api_slot_cache_misses_total",
			Help: "Parts whose counts per 15-minute slot a timeline had to count (and then cached).",
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
	el, ok := c.byKey[k]
	if !ok {
		c.misses.Inc()
		return partCounts{}, false
	}
	c.hits.Inc()
	c.order.MoveToFront(el)
	return el.Value.(*slotEntry).counts, true
}

// put caches counts (by slot) under k.
func (c *slotCache) put(k slotKey, counts partCounts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.order.MoveToFront(el)
		return
	}
	e := &slotEntry{key: k, counts: counts}
	c.byKey[k] = c.order.PushFront(e)
	c.size += e.bytes()
	for c.order.Len() > c.max {
		old := c.order.Remove(c.order.Back()).(*slotEntry)
		delete(c.byKey, old.key)
		c.size -= old.bytes()
	}
	c.entries.Set(float64(c.order.Len()))
	c.bytes.Set(float64(c.size))
}
