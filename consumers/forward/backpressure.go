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

// queueCap is the queue length of one target that pauses its partition.
func (f *Forwarder) queueCap() int { return max(f.cfg.MaxInFlight/8, 1) }

// pollRecords bounds the records one poll returns.
func (f *Forwarder) pollRecords() int { return max(min(5000, f.cfg.MaxInFlight/8), 1) }

// hold pauses fetching of p for t (first holder only).
func (f *Forwarder) hold(t *target, p *partition) {
	p.mu.Lock()
	p.holds++
	first := p.holds == 1 && !p.revoked.Load()
	p.mu.Unlock()
	if first {
		f.cl.PauseFetchPartitions(map[string][]int32{f.cfg.Topic: {p.id}})
		f.m.heldPartitions.Inc()
		f.log.Info("a workspace's queue is full; reading of its partition paused", "workspace_id", t.ws, "partition", p.id, "queued", f.queueCap())
	}
}

// releaseIfDrained resumes fetching of the partition t holds once t's
// queue is down to half the cap (last holder only).
func (f *Forwarder) releaseIfDrained(t *target) {
	t.mu.Lock()
	p := t.holding
	if p == nil || len(t.items) > f.queueCap()/2 {
		t.mu.Unlock()
		return
	}
	t.holding = nil
	t.mu.Unlock()
	p.mu.Lock()
	p.holds--
	last := p.holds == 0
	p.mu.Unlock()
	if last {
		f.m.heldPartitions.Dec()
		if !p.revoked.Load() {
			f.cl.ResumeFetchPartitions(map[string][]int32{f.cfg.Topic: {p.id}})
			f.log.Info("reading of the partition resumed", "workspace_id", t.ws, "partition", p.id)
		}
	}
}
