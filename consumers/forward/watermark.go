package forward

// Each assigned partition's commit point. A record stays in its
// partition's list until every delivery of it finished (delivered, dropped
// or dead-lettered); the partition's offset is then marked up to its first
// unfinished record (a low watermark), never past it.

import (
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// partition tracks the records of one assigned partition in offset order.
type partition struct {
	id      int32
	mu      sync.Mutex
	entries []*entry
	revoked atomic.Bool
	holds   int // targets whose full queue holds this partition
	// fetchPaused is what syncFetch last asked of the client; fetchTurn
	// (capacity one) is taken while it asks (backpressure.go): a channel,
	// so that waiting for the turn is durably blocking under synctest.
	fetchPaused bool
	fetchTurn   chan struct{}
}

// entry is one record: pending counts its deliveries not yet finished
// (plus one while it is being dispatched).
type entry struct {
	p       *partition
	offset  int64
	epoch   int32
	pending int32
}

func (f *Forwarder) partition(id int32) *partition {
	f.pmu.Lock()
	defer f.pmu.Unlock()
	p := f.parts[id]
	if p == nil {
		p = &partition{id: id, fetchTurn: make(chan struct{}, 1)}
		f.parts[id] = p
	}
	return p
}

// finish ends one delivery of e. When e has none left, the partition's low
// watermark advances past every leading finished record and is marked for
// commit (unless the partition was revoked meanwhile).
func (f *Forwarder) finish(e *entry) {
	p := e.p
	p.mu.Lock()
	e.pending--
	if e.pending > 0 {
		p.mu.Unlock()
		return
	}
	var last *entry
	n := 0
	for n < len(p.entries) && p.entries[n].pending == 0 {
		last = p.entries[n]
		p.entries[n] = nil
		n++
	}
	if n > 0 {
		p.entries = p.entries[n:]
	}
	if last != nil && !p.revoked.Load() {
		f.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
			f.cfg.Topic: {p.id: {Epoch: last.epoch, Offset: last.offset + 1}},
		})
	}
	p.mu.Unlock()
	<-f.slots
	f.m.inFlight.Dec()
}

// finishItems ends the deliveries of items that left t's queue for good.
// The ids of the sent ones (delivered or dead-lettered to t's kind) are
// remembered first, so that a resend of them is not delivered; the rest
// (dropped, skipped, of revoked partitions) only finish.
func (f *Forwarder) finishItems(t *target, sent, rest []*item) {
	for _, it := range sent {
		f.recent.add(t.kind, t.ws, it.id)
	}
	if len(sent) > 0 {
		f.remember(t.ws, sent...)
	}
	for _, it := range rest {
		f.finish(it.e)
	}
	for _, it := range sent {
		f.finish(it.e)
	}
}
