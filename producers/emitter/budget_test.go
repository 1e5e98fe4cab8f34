package emitter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBudgetServesWaitersInOrderOnceAnEighthIsFree(t *testing.T) {
	b := newBudget(16, 1<<20)
	for range 16 {
		require.NoError(t, b.acquire(context.Background(), 10))
	}
	type result struct {
		i   int
		err error
	}
	order := make(chan result, 3)
	for i := range 3 {
		go func() { order <- result{i, b.acquire(context.Background(), 10)} }()
		require.Eventually(t, func() bool { _, _, w, _ := b.usage(); return w == i+1 }, 5*time.Second, time.Millisecond)
	}
	b.release(10) // 15 held: above the resume mark (14), nobody is served
	_, _, waiting, _ := b.usage()
	require.Equal(t, 3, waiting)
	b.release(10) // 14 held: waiters are served, in order, up to the bound
	served := map[int]bool{}
	for range 2 {
		r := <-order
		require.NoError(t, r.err)
		served[r.i] = true
	}
	require.Equal(t, map[int]bool{0: true, 1: true}, served, "the first two to arrive")
	events, bytes, waiting, peak := b.usage()
	require.Equal(t, int64(16), events)
	require.Equal(t, int64(160), bytes)
	require.Equal(t, 1, waiting)
	require.Equal(t, int64(16), peak)

	b.close(ErrClosed)
	last := <-order
	require.Equal(t, 2, last.i)
	require.ErrorIs(t, last.err, ErrClosed, "closing releases the last waiter with an error")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, b.acquire(ctx, 1), ErrClosed)
}

func TestBudgetWaiterGivesUpWithItsContext(t *testing.T) {
	b := newBudget(1, 1<<20)
	require.NoError(t, b.acquire(context.Background(), 1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.acquire(ctx, 1), context.DeadlineExceeded)
	_, _, waiting, _ := b.usage()
	require.Zero(t, waiting, "a waiter that gave up is forgotten")
	idle := make(chan error, 1)
	go func() { idle <- b.wait(context.Background()) }()
	b.release(1)
	require.NoError(t, <-idle)
}
