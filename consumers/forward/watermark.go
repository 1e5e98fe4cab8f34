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
	last, done := finishLocked(e)
	f.markLocked(p, last)
	p.mu.Unlock()
	if done {
		f.release(1)
	}
}

// finishAll ends one delivery of each item's record, as finish does, but
// marks a partition's commit point once per run of items of that
// partition.
func (f *Forwarder) finishAll(its []*item) {
	var p *partition
	var last *entry
	done := 0
	for _, it := range its {
		if it.e.p != p {
			if p != nil {
				f.markLocked(p, last)
				p.mu.Unlock()
			}
			p, last = it.e.p, nil
			p.mu.Lock()
		}
		l, d := finishLocked(it.e)
		if d {
			done++
		}
		if l != nil {
			last = l
		}
	}
	if p != nil {
		f.markLocked(p, last)
		p.mu.Unlock()
	}
	f.release(done)
}

// finishLocked ends one delivery of e, whose partition's lock the caller
// holds. When e has none left (done), the low watermark advances past
// every leading finished record; last is the last of them (nil: it did
// not move).
func finishLocked(e *entry) (last *entry, done bool) {
	p := e.p
	e.pending--
	if e.pending > 0 {
		return nil, false
	}
	n := 0
	for n < len(p.entries) && p.entries[n].pending == 0 {
		last = p.entries[n]
		p.entries[n] = nil
		n++
	}
	if n > 0 {
		p.entries = p.entries[n:]
	}
	return last, true
}

// markLocked marks p's commit point after last (nil: no move) unless p
// was revoked; the caller holds p's lock.
func (f *Forwarder) markLocked(p *partition, last *entry) {
	if last != nil && !p.revoked.Load() {
		f.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
			f.cfg.Topic: {p.id: {Epoch: last.epoch, Offset: last.offset + 1}},
		})
	}
}

// release frees the in-flight slots of n finished records.
func (f *Forwarder) release(n int) {
	for range n {
		<-f.slots
	}
	f.m.inFlight.Sub(float64(n))
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
	f.finishAll(rest)
	f.finishAll(sent)
}
