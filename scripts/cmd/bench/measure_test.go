package main

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMedianAndPairedRatio(t *testing.T) {
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
	require.Zero(t, median(nil))

	writer := outcome{rates: []float64{90, 200, 80}}
	client := outcome{rates: []float64{100, 100, 100}}
	// Paired per round: 0.9, 2.0, 0.8; the median is 0.9, not the ratio
	// of the medians or of the bests.
	require.InDelta(t, 0.9, medianRatio(writer, client), 1e-9)
	f := rateFigure("w", "events/s", writer).against("client", writer, client, ">= 0.90")
	require.Equal(t, 90.0, f.Value)
	require.Equal(t, 200.0, f.Best)
	require.InDelta(t, 2.0, f.BestRatio, 1e-9)
	require.Equal(t, []float64{90, 200, 80}, f.Runs)
}

func TestEngineGridStaysWithinCoresAndPartitions(t *testing.T) {
	for _, s := range engineGrid(false, 1) {
		require.Equal(t, 1, s.Consumers)
	}
	g := engineGrid(true, partitions)
	require.NotEmpty(t, g)
	for _, s := range g {
		require.LessOrEqual(t, s.Consumers, partitions)
		require.Positive(t, s.MaxBlockSize)
	}
}

func TestClientCompressionFollowsTheWriters(t *testing.T) {
	require.Equal(t, []string{"--compression", "0"}, clientCompression("none"))
	require.Empty(t, clientCompression("lz4"))
	require.Equal(t, []string{"--network_compression_method", "zstd"}, clientCompression("zstd"))
}

// TestUntilStoredTimesFromAssignmentToTheLastRow: the rate runs from the
// first poll that saw the assignment to the first that counted every row,
// polled every 10 ms at first and never slower than every 100 ms.
func TestUntilStoredTimesFromAssignmentToTheLastRow(t *testing.T) {
	require.Equal(t, 10*time.Millisecond, pollEvery(0))
	require.Equal(t, 10*time.Millisecond, pollEvery(time.Second))
	require.Equal(t, 25*time.Millisecond, pollEvery(5*time.Second))
	require.Equal(t, 100*time.Millisecond, pollEvery(time.Hour))

	start := time.Now()
	var assignedAt time.Time
	assigned := func() bool {
		if time.Since(start) < 300*time.Millisecond {
			return false
		}
		if assignedAt.IsZero() {
			assignedAt = time.Now()
		}
		return true
	}
	count := func() (uint64, error) {
		if assignedAt.IsZero() {
			return 0, nil
		}
		return uint64(min(time.Since(assignedAt), 100*time.Millisecond) / time.Millisecond * 10), nil // 1,000 rows at 100 ms
	}
	rate, err := untilStored(1000, count, assigned)
	require.NoError(t, err)
	// 1,000 rows 100 ms (and a poll or a busy machine's delay) after the
	// assignment: the 300 ms before it are not counted.
	require.LessOrEqual(t, rate, 1000/0.1)
	require.Greater(t, rate, 1000/0.3)

	_, err = untilStored(1, func() (uint64, error) { return 1, nil }, func() bool { return false })
	require.ErrorContains(t, err, "without the group reporting an assignment")
	boom := errors.New("boom")
	_, err = untilStored(1, func() (uint64, error) { return 0, boom }, func() bool { return true })
	require.ErrorIs(t, err, boom)
}

// TestARatioWithoutABaselineIsLeftOut: a round whose baseline figure is 0
// (system.query_log without the query's CPU) gives no ratio, so the
// results still encode (an infinite ratio made json.Marshal fail and the
// run die writing its results).
func TestARatioWithoutABaselineIsLeftOut(t *testing.T) {
	a := outcome{rates: []float64{2, 3, 4}}
	b := outcome{rates: []float64{1, 0, 2}}
	require.Equal(t, 2.0, medianRatio(a, b), "the rounds with a baseline: 2 and 2")
	require.Zero(t, medianRatio(a, outcome{rates: []float64{0, 0, 0}}))
	f := splitCPUFigure("x", a.rates).against("y", a, outcome{rates: []float64{0, 0, 0}}, "")
	_, err := json.Marshal(f)
	require.NoError(t, err)
}
