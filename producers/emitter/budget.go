package emitter

import (
	"container/list"
	"context"
	"sync"
)

// budget bounds the events and bytes an Emitter holds between accepting an
// event and firing its callback. Once it is full, every caller waits until
// an eighth of it is free again (its resume mark); waiters are then served
// in arrival order, so a large event is not starved by a stream of small
// ones, and a producer blocked on a full buffer runs for a while without
// blocking instead of waking for every single acknowledgement. Only events
// that passed validation ever take from the budget.
type budget struct {
	maxEvents, maxBytes       int64
	resumeEvents, resumeBytes int64 // waiters are served at or below these

	mu      sync.Mutex
	events  int64
	bytes   int64
	peak    int64 // highest events ever held
	waiters list.List
	full    bool // set when a caller had to wait; cleared at the resume mark
	closed  error
	idle    chan struct{} // closed when events == 0 and there are no waiters; nil otherwise
}

type waiter struct {
	bytes int64
	ready chan error // receives nil (space taken) or the close error
}

func newBudget(maxEvents, maxBytes int64) *budget {
	return &budget{maxEvents: maxEvents, maxBytes: maxBytes,
		resumeEvents: maxEvents - max(1, maxEvents/8), resumeBytes: maxBytes - maxBytes/8}
}

func (b *budget) fits(bytes int64) bool {
	return b.events+1 <= b.maxEvents && b.bytes+bytes <= b.maxBytes
}

func (b *budget) take(bytes int64) {
	b.events++
	b.bytes += bytes
	b.peak = max(b.peak, b.events)
}

// acquire takes one event of the given size, waiting while the budget is
// full. It returns ctx's error when ctx ends first, or the close error once
// the budget is closed. bytes must not exceed maxBytes.
func (b *budget) acquire(ctx context.Context, bytes int64) error {
	b.mu.Lock()
	if b.closed != nil {
		b.mu.Unlock()
		return b.closed
	}
	if !b.full && b.fits(bytes) {
		b.take(bytes)
		b.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		b.mu.Unlock()
		return err
	}
	b.full = true
	w := &waiter{bytes: bytes, ready: make(chan error, 1)}
	elem := b.waiters.PushBack(w)
	b.mu.Unlock()

	select {
	case err := <-w.ready:
		return err
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case err := <-w.ready:
			// Served while ctx ended: give the space back.
			if err == nil {
				b.events--
				b.bytes -= bytes
				b.notify()
			}
		default:
			b.waiters.Remove(elem)
			b.notify()
		}
		b.mu.Unlock()
		return ctx.Err()
	}
}

// release returns one event of the given size.
func (b *budget) release(bytes int64) {
	b.mu.Lock()
	b.events--
	b.bytes -= bytes
	b.notify()
	b.mu.Unlock()
}

// notify clears full at the resume mark, then serves waiters in order while
// they fit, and signals idleness. The caller holds mu.
func (b *budget) notify() {
	if b.full && b.events <= b.resumeEvents && b.bytes <= b.resumeBytes {
		b.full = false
	}
	for e := b.waiters.Front(); e != nil && !b.full; e = b.waiters.Front() {
		w := e.Value.(*waiter)
		if !b.fits(w.bytes) {
			b.full = true
			break
		}
		b.take(w.bytes)
		b.waiters.Remove(e)
		w.ready <- nil
	}
	if b.events == 0 && b.waiters.Len() == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
}

// close fails every waiter and every later acquire with err.
func (b *budget) close(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed != nil {
		return
	}
	b.closed = err
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		b.waiters.Remove(e)
		e.Value.(*waiter).ready <- err
	}
	b.notify()
}

// wait returns once nothing is held and nobody waits, or ctx's error.
func (b *budget) wait(ctx context.Context) error {
	b.mu.Lock()
	if b.events == 0 && b.waiters.Len() == 0 {
		b.mu.Unlock()
		return nil
	}
	if b.idle == nil {
		b.idle = make(chan struct{})
	}
	idle := b.idle
	b.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// usage returns what is held now, the number of waiters and the peak.
func (b *budget) usage() (events, bytes int64, waiting int, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.events, b.bytes, b.waiters.Len(), b.peak
}
