package backoff

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWaitDoublesUpToMax(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second}
	for n, want := range map[int]time.Duration{
		0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 40: time.Second, 1 << 20: time.Second,
	} {
		require.Equal(t, want, p.Wait(n), "retry %d", n)
	}
}

func TestJitterStaysBetweenHalfAndWhole(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second, Jitter: true}
	for n := 1; n < 8; n++ {
		whole := Policy{Min: p.Min, Max: p.Max}.Wait(n)
		for range 100 {
			d := p.Wait(n)
			require.GreaterOrEqual(t, d, whole/2)
			require.LessOrEqual(t, d, whole)
		}
	}
}

func TestRetryWaitsTheBackoffBetweenFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{Min: 10 * time.Millisecond, Max: 40 * time.Millisecond}
		start := time.Now()
		var waits []time.Duration
		calls := 0
		err := p.Retry(context.Background(), func() error {
			if calls++; calls < 5 {
				return errors.New("down")
			}
			return nil
		}, func(n int, err error, wait time.Duration) {
			require.Equal(t, len(waits)+1, n)
			require.EqualError(t, err, "down")
			waits = append(waits, wait)
		})
		require.NoError(t, err)
		require.Equal(t, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}, waits)
		require.Equal(t, 110*time.Millisecond, time.Since(start))
	})
}

func TestRetryStopsOnStopAndHonoursAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{Min: time.Millisecond, Max: time.Millisecond}
		final := errors.New("rejected")
		calls := 0
		var waits []time.Duration
		err := p.Retry(context.Background(), func() error {
			if calls++; calls == 1 {
				return After(time.Minute, errors.New("busy"))
			}
			return Stop(final)
		}, func(_ int, _ error, wait time.Duration) { waits = append(waits, wait) })
		require.Same(t, final, err)
		require.Equal(t, []time.Duration{time.Minute}, waits)
		require.Equal(t, 2, calls)
	})
}

func TestRetryEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := Policy{Min: time.Millisecond, Max: 100 * time.Millisecond}.Retry(ctx, func() error { return errors.New("down") }, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "last error: down")
	})
}
