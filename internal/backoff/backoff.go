// Package backoff spaces out retries: a capped exponential wait, with
// optional jitter, and a loop that retries an operation with it until the
// operation succeeds, gives up or its context ends.
//
// It is the one retry helper of the module: the writer's inserts, registry
// reads and dead letters, the forwarder's deliveries, registry reads and
// dead letters, dead-letter replays, the settings table's start and the
// read API's wait for the settings topic all retry through it.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff: the wait before retry n (from 1)
// is Min doubled n-1 times, at most Max. A Policy is a value, safe for
// concurrent use.
type Policy struct {
	Min, Max time.Duration
	// Jitter draws each wait uniformly between half and the whole of it,
	// so that clients failing together do not retry together.
	Jitter bool
}

// Wait returns the wait before retry n (from 1; n < 1 counts as 1).
func (p Policy) Wait(n int) time.Duration {
	d := p.Min << min(max(n, 1)-1, 30)
	if d <= 0 || d > p.Max {
		d = p.Max
	}
	if p.Jitter && d > 0 {
		d = d/2 + rand.N(d/2+1)
	}
	return d
}

// Retry calls op until it returns nil, returns an error made with Stop, or
// ctx ends. After failure n it calls failed (when not nil) with n, the
// error and the wait, then waits p.Wait(n), or the wait an error made with
// After asks for. failed may count or log; it is called from Retry's
// goroutine.
//
// Retry returns nil once op succeeded, the error given to Stop, or, when
// ctx ends first, an error wrapping ctx.Err() that quotes op's last error.
func (p Policy) Retry(ctx context.Context, op func() error, failed func(n int, err error, wait time.Duration)) error {
	for n := 1; ; n++ {
		err := op()
		if err == nil {
			return nil
		}
		var s *stopError
		if errors.As(err, &s) {
			return s.err
		}
		wait := p.Wait(n)
		var a *afterError
		if errors.As(err, &a) {
			wait = a.wait
		}
		if failed != nil {
			failed(n, err, wait)
		}
		if serr := Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (last error: %v)", serr, err)
		}
	}
}

// Sleep waits d, or until ctx ends; it returns ctx.Err() when ctx ended
// first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Stop marks err as final: Retry returns err at once, without retrying.
func Stop(err error) error { return &stopError{err} }

// After asks Retry to wait d before the next attempt instead of the
// policy's wait (a server's Retry-After); err is the failure.
func After(d time.Duration, err error) error { return &afterError{d, err} }

type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

type afterError struct {
	wait time.Duration
	err  error
}

func (e *afterError) Error() string { return e.err.Error() }
func (e *afterError) Unwrap() error { return e.err }
