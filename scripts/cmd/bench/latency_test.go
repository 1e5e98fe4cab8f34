package main

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
)

func TestTraceTimesEachEventFromItsOwnAckAndSchedule(t *testing.T) {
	start := time.Unix(1000, 0)
	tr := newTrace(4, 10, start) // due at 0, 100, 200, 300 ms
	require.Equal(t, start.Add(300*time.Millisecond), tr.due(3))
	ms := func(n int) time.Time { return start.Add(time.Duration(n) * time.Millisecond) }
	for i, ack := range []int{10, 150, 210, 320} {
		tr.ack(i, event.Event{ID: string(rune('a' + i))}, nil, ms(ack))
	}
	// Event b is read late: the tail must show it, whatever the others do.
	seen := map[string]time.Time{"a": ms(60), "b": ms(1150), "c": ms(260), "d": ms(370)}
	tr.sent.Store(true)
	require.True(t, tr.allSeen(len(seen)))
	row, err := tr.latencies(seen)
	require.NoError(t, err)
	require.Equal(t, 4, row.Events)
	require.InDelta(t, 1000, row.Maxms, 1e-6)
	require.InDelta(t, 1000, row.P99ms, 1e-6)
	require.InDelta(t, 50, row.P50ms, 1e-6)
	require.InDelta(t, 1050, row.SchedMaxms, 1e-6)
	require.InDelta(t, 4/0.32, row.Achieved, 1e-6)

	delete(seen, "c")
	_, err = tr.latencies(seen)
	require.ErrorContains(t, err, "1 of 4")
}

func TestTraceReportsFailedEvents(t *testing.T) {
	tr := newTrace(2, 1, time.Now())
	tr.ack(0, event.Event{}, errors.New("boom"), time.Now())
	require.ErrorContains(t, tr.err(), "1 events failed")
	require.False(t, tr.allSeen(0))
}
