package writer

// The pipeline's stages. The poller reads Kafka and hands each poll to the
// consume loop, which buffers the records and flushes batches; the inserter
// stores the batches, up to InsertStreams at once, and the registrar
// records their ids and marks their records for commit, in batch order.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// handoff connects the poller to the consume loop: each poll's fetches go
// over polled, and the poller waits on processed before it allows a
// rebalance and polls again.
type handoff struct {
	polled    chan polledRecords
	processed chan struct{}
	done      chan struct{} // closed when the poller returned
}

// poll is the poller stage: it hands each poll's records to consume and
// waits until they are processed before it allows a rebalance and polls
// again. It returns when ctx ends.
func (w *Writer) poll(ctx context.Context, h handoff) {
	defer close(h.done)
	for {
		fetches, recs := w.pollPassed(ctx)
		select {
		case h.polled <- polledRecords{fetches, recs}:
			<-h.processed
			w.cl.AllowRebalance()
		case <-ctx.Done():
			w.cl.AllowRebalance()
			return
		}
	}
}

// consume buffers the poller's records and flushes batches when full or
// due, until ctx ends (then it returns nil). It returns early with the
// error of a failed insert while ctx is live, or when ctx ends before a
// dead letter is parked (then once the poller returned).
func (w *Writer) consume(ctx context.Context, h handoff) error {
	timer := time.NewTimer(w.cfg.BatchAge)
	defer timer.Stop()
	var runErr error
	var conv []converted // reused from poll to poll
	for {
		select {
		case <-ctx.Done():
			return nil
		case got := <-h.polled:
			var err error
			conv, err = w.buffer(ctx, got, conv, &runErr)
			h.processed <- struct{}{}
			if err != nil {
				<-h.done
				return err
			}
		case <-timer.C:
			w.mu.Lock()
			if len(w.pending) > 0 && w.now().Sub(w.oldest) >= w.cfg.BatchAge {
				runErr = w.flushLocked(ctx)
			}
			w.mu.Unlock()
		}
		if runErr != nil && ctx.Err() == nil {
			return runErr
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(w.untilDue())
	}
}

// buffer converts a poll's records and adds them to the buffer, flushing
// whenever it holds BatchSize rows (batches hold BatchSize rows at most)
// until a flush failed (*flushErr). It fails only when ctx ends before a
// dead letter is parked: then it keeps nothing and commits nothing, and
// the records are replayed.
func (w *Writer) buffer(ctx context.Context, got polledRecords, conv []converted, flushErr *error) ([]converted, error) {
	got.fetches.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			w.log.Warn("fetch failed", "topic", t, "partition", p, "err", err)
		}
	})
	got.fetches.EachPartition(w.observeLag)
	w.mu.Lock()
	defer w.mu.Unlock()
	conv, err := w.add(ctx, got.recs, conv, flushErr)
	if err != nil {
		w.dropLocked()
	}
	return conv, err
}

// insertLoop is the inserter stage: it takes the flushed batches in order,
// keeps their fresh rows (see fresh) and stores them, up to InsertStreams
// at once, each in a goroutine of stages, and hands every batch on to the
// registrar in the same order. It returns when ctx ends.
func (w *Writer) insertLoop(ctx context.Context, stages *sync.WaitGroup) {
	slots := make(chan struct{}, w.cfg.InsertStreams)
	for {
		select {
		case b := <-w.inserts:
			rows, ids := w.fresh(b) // in batch order, before the next batch
			b.stored = make(chan error, 1)
			select {
			case slots <- struct{}{}:
				stages.Go(func() {
					defer func() { <-slots }()
					b.stored <- w.insert(ctx, b, rows, ids)
				})
			case <-ctx.Done():
				b.stored <- fmt.Errorf("insert %d rows: %w", len(rows), ctx.Err())
			}
			select {
			case w.registers <- b:
			case <-ctx.Done():
				b.done <- fmt.Errorf("register %d ids: %w", len(ids), ctx.Err())
			}
		case <-ctx.Done():
			return
		}
	}
}

// registerLoop is the registrar stage: it takes the batches in order,
// waits for each one's insert, registers its ids and marks its records
// (register), and reports the outcome on the batch's done. It returns when
// ctx ends.
func (w *Writer) registerLoop(ctx context.Context) {
	for {
		select {
		case b := <-w.registers:
			var err error
			select {
			case err = <-b.stored:
			case <-ctx.Done():
				err = fmt.Errorf("insert %d rows: %w", len(b.rows), ctx.Err())
			}
			if err == nil {
				err = w.register(ctx, b)
			}
			if err == nil {
				w.recycle(b)
			}
			b.done <- err
		case <-ctx.Done():
			return
		}
	}
}

// observeLag records a partition's lag after a fetch: its high watermark
// minus the next offset to consume.
func (w *Writer) observeLag(p kgo.FetchTopicPartition) {
	if n := len(p.Records); n > 0 {
		lag := p.HighWatermark - p.Records[n-1].Offset - 1
		w.m.lag.WithLabelValues(p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
	}
}
