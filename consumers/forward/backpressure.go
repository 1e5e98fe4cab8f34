package forward

// Back-pressure per partition. Every record read takes one of MaxInFlight
// slots until it is finished, and reading stops when none is left. A
// workspace whose target cannot take its events (paused, failing or slow)
// would fill them all and stop reading for every workspace; instead, when
// one target's queue reaches queueCap, fetching of that partition pauses
// (a workspace's events are all in one partition: they are keyed by
// workspace), and resumes once the queue is down to half. What a paused
// partition holds is bounded by queueCap plus one poll (pollRecords), so
// that the other partitions keep flowing. Records of the partition the
// client fetched but did not return yet are fetched again when it resumes;
// its commit could not pass the queue's first record anyway.
//
// Holding and releasing race: the reading loop holds a partition while a
// worker releases it, and a revocation may come at any time. Each changes
// the partition's count of holders (or marks it revoked) and then calls
// syncFetch, which brings the client's pause in line with the count as it
// is when the call's turn comes: a pause can never land after the resume
// that should have undone it, nor the reverse.

// fetchPauser pauses and resumes fetching of partitions (a *kgo.Client).
type fetchPauser interface {
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
}

// queueCap is the queue length of one target that pauses its partition.
func (f *Forwarder) queueCap() int { return max(f.cfg.MaxInFlight/8, 1) }

// pollRecords bounds the records one poll returns.
func (f *Forwarder) pollRecords() int { return max(min(5000, f.cfg.MaxInFlight/8), 1) }

// holdIfFull makes t hold p, the partition of its newest item, once its
// queue is full (t holds at most one partition), and reports whether it
// did: the caller then calls syncFetch. The caller holds t.mu.
func (f *Forwarder) holdIfFull(t *target, p *partition) bool {
	if t.holding != nil || len(t.items) < f.queueCap() {
		return false
	}
	t.holding = p
	p.mu.Lock()
	p.holds++
	p.mu.Unlock()
	return true
}

// releaseIfDrained releases the partition t holds once t's queue is down
// to half the cap.
func (f *Forwarder) releaseIfDrained(t *target) {
	t.mu.Lock()
	p := t.holding
	if p == nil || len(t.items) > f.queueCap()/2 {
		t.mu.Unlock()
		return
	}
	t.holding = nil
	p.mu.Lock()
	p.holds--
	p.mu.Unlock()
	t.mu.Unlock()
	f.syncFetch(p)
}

// syncFetch pauses fetching of p while it has holders and is assigned,
// and resumes it otherwise. Calls are serialized per partition and each
// reads the holders when its turn comes, so the last call, made after the
// last change, leaves the client as that change wants; a caller returns
// only once the client was asked, so the reading loop that made a queue
// full does not poll the held partition again.
func (f *Forwarder) syncFetch(p *partition) {
	p.fetchTurn <- struct{}{}
	defer func() { <-p.fetchTurn }()
	p.mu.Lock()
	want := p.holds > 0 && !p.revoked.Load()
	changed := want != p.fetchPaused
	p.fetchPaused = want
	p.mu.Unlock()
	if !changed {
		return
	}
	tp := map[string][]int32{f.cfg.Topic: {p.id}}
	if want {
		f.pauser.PauseFetchPartitions(tp)
		f.m.heldPartitions.Inc()
		f.log.Info("reading of the partition paused", "partition", p.id)
		return
	}
	// Paused fetching persists in the client, also for a revoked
	// partition: one assigned here again later must be read.
	f.pauser.ResumeFetchPartitions(tp)
	f.m.heldPartitions.Dec()
	f.log.Info("reading of the partition resumed", "partition", p.id)
}
