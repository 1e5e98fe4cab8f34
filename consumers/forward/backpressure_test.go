package forward

import (
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// pauseRecorder stands for the client's fetch pausing: it records which
// partitions are paused, and runs during, once, inside the first call of
// the kind named by on, before that call takes effect.
type pauseRecorder struct {
	mu     sync.Mutex
	paused map[int32]bool
	on     string // "pause" or "resume"
	during func()
}

func (r *pauseRecorder) call(kind string, tp map[string][]int32, paused bool) {
	r.mu.Lock()
	during := r.during
	if r.on != kind {
		during = nil
	}
	if during != nil {
		r.during = nil
	}
	r.mu.Unlock()
	if during != nil {
		during()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ps := range tp {
		for _, p := range ps {
			r.paused[p] = paused
		}
	}
}

func (r *pauseRecorder) PauseFetchPartitions(tp map[string][]int32) map[string][]int32 {
	r.call("pause", tp, true)
	return nil
}

func (r *pauseRecorder) ResumeFetchPartitions(tp map[string][]int32) { r.call("resume", tp, false) }

func (r *pauseRecorder) state(p int32) (paused, ran bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.paused[p], r.during == nil
}

// A partition's fetching ends paused exactly when a target holds it and it
// is assigned, whatever another goroutine does while a pause or a resume is
// being issued: a worker draining the queue, the reading loop filling it
// again, or a revocation.
func TestHeldPartitionPauseFollowsItsHoldersWhateverTheInterleaving(t *testing.T) {
	tests := []struct {
		name       string
		on         string // the call under way
		meanwhile  string // what the other goroutine does
		wantPaused bool
	}{
		{name: "drained while the pause is issued", on: "pause", meanwhile: "drain"},
		{name: "filled again while the resume is issued", on: "resume", meanwhile: "fill", wantPaused: true},
		{name: "revoked while the pause is issued", on: "pause", meanwhile: "revoke"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &pauseRecorder{paused: map[int32]bool{}, on: tt.on}
				f := &Forwarder{cfg: Config{Topic: "audit-events", MaxInFlight: 16}, m: newMetrics(nil),
					log: slog.New(slog.DiscardHandler), pauser: rec, parts: map[int32]*partition{}, targets: map[string]*target{}}
				f.sched.init()
				p := f.partition(0)
				acts := map[string]func(){
					"fill": func() { // the reading loop: the queue reaches its cap
						for range f.queueCap() {
							f.enqueue(TargetSource, "ws_1", &item{e: &entry{p: p, pending: 1}})
						}
					},
					"drain": func() { // a worker: the whole queue delivered
						f.tmu.Lock()
						tg := f.targets[TargetSource+"\x00ws_1"]
						f.tmu.Unlock()
						tg.mu.Lock()
						n := len(tg.items)
						tg.mu.Unlock()
						tg.take(n)
						f.releaseIfDrained(tg)
					},
					"revoke": func() { f.forget(map[string][]int32{f.cfg.Topic: {0}}) },
				}
				var other sync.WaitGroup
				rec.during = func() {
					// The other goroutine goes as far as it can while
					// the call is under way.
					other.Go(acts[tt.meanwhile])
					synctest.Wait()
				}
				acts["fill"]()
				if tt.on == "resume" {
					acts["drain"]()
				}
				other.Wait()

				paused, ran := rec.state(0)
				require.True(t, ran, "the other goroutine ran during the call")
				p.mu.Lock()
				holds := p.holds
				p.mu.Unlock()
				require.Equal(t, tt.wantPaused, paused, "fetching paused (holders: %d)", holds)
				want := 0.0
				if tt.wantPaused {
					want = 1
				}
				require.Equal(t, want, gauge(t, f.m.heldPartitions), "held partitions")
			})
		})
	}
}
