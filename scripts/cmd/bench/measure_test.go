package main

import (
	"testing"

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
