package main

// The floor of the forwarder's design, measured next to it: plain franz-go
// consuming plus HTTP POSTs of the same batches to the same sink.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/forward"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// seqHeader carries each benchmark record's sequence number, by which the
// floor finds the track call made of it before its clock started.
const seqHeader = "bench-seq"

// trackCalls runs the backlog's events through the forwarder's own
// per-event pipeline (forward.Process with the workspaces compiled from the
// benchmark's settings records): calls[i] is the track call the forwarder
// sends for event i, nil when its filters drop it.
func (b *bench) trackCalls(ctx context.Context, backlog int) ([][]byte, error) {
	ws := forward.NewWorkspaces(slog.New(slog.DiscardHandler))
	defer ws.Close()
	for _, s := range b.settings {
		ws.Apply(s.key, s.value)
	}
	if err := ws.WaitIdle(ctx); err != nil {
		return nil, err
	}
	calls := make([][]byte, backlog)
	for i := range calls {
		e := benchEvent(i, b.workspaces, b.names)
		w := ws.Get(e.WorkspaceID)
		if w == nil || !w.Ready() {
			return nil, fmt.Errorf("workspace %s not compiled", e.WorkspaceID)
		}
		out, err := forward.Process(w, &e)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		calls[i] = out.Call
	}
	return calls, nil
}

// floorBatch is one request of the floor: up to BatchEvents track calls of
// one workspace.
type floorBatch struct {
	workspace string
	calls     [][]byte
}

// floorRound drains the backlog with the floor and returns its drain
// (until the sink received want events). A plain franz-go group
// consumer (a new group, from the start, the forwarder's fetch wait) reads
// the records; each record's precomputed call is queued per workspace, and
// a workspace's queue is sent as one request when it holds cfg.BatchEvents
// calls and after every poll. cfg.Workers goroutines POST the requests
// through the forwarder's own sender (forward.Sender: its body, client,
// egress guard and write key) to the same sink.
func (b *bench) floorRound(ctx context.Context, round int, calls [][]byte, want int64) (drain, error) {
	cfg := b.config(b.newGroup("floor", round))
	sender := forward.NewSender(cfg.RequestTimeout, cfg.Workers, cfg.Egress.Policy(), time.Now)
	at := b.mark()
	start := time.Now()
	cl, err := kgo.NewClient(append(b.kc.Options(),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return drain{}, err
	}
	defer cl.Close()

	pctx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	jobs := make(chan floorBatch, cfg.Workers)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for j := range jobs {
				t := trackingplan.Target{URL: b.sink.URL, WriteKey: "bench-" + j.workspace}
				if err := sender.SendBatch(pctx, t, j.calls); err != nil && pctx.Err() == nil {
					fail(err)
				}
			}
		})
	}
	wg.Go(func() {
		defer close(jobs)
		if err := b.floorPoll(pctx, cl, calls, cfg.BatchEvents, jobs); err != nil {
			fail(err)
		}
	})
	el, err := b.waitReceived(pctx, at, want, start, failed)
	stopPolling()
	wg.Wait()
	return el, err
}

// floorPoll reads until ctx ends, turning records into batches on jobs.
func (b *bench) floorPoll(ctx context.Context, cl *kgo.Client, calls [][]byte, batchEvents int, jobs chan<- floorBatch) error {
	pending := map[string][][]byte{}
	send := func(ws string) bool {
		select {
		case jobs <- floorBatch{workspace: ws, calls: pending[ws]}:
			delete(pending, ws)
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil {
			return err
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			call := recordCall(r, calls)
			if call == nil {
				continue
			}
			ws := string(r.Key)
			pending[ws] = append(pending[ws], call)
			if len(pending[ws]) == batchEvents && !send(ws) {
				return nil
			}
		}
		for ws := range pending {
			if !send(ws) {
				return nil
			}
		}
	}
}

// recordCall is the precomputed track call of r (nil: dropped or unknown).
func recordCall(r *kgo.Record, calls [][]byte) []byte {
	for _, h := range r.Headers {
		if h.Key == seqHeader {
			if i, err := strconv.Atoi(string(h.Value)); err == nil && i >= 0 && i < len(calls) {
				return calls[i]
			}
		}
	}
	return nil
}
