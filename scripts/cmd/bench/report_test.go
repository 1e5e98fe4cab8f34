package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMarkdownShowsMediansBestRunsGridAndLatency(t *testing.T) {
	wr, client := outcome{rates: []float64{90, 200, 80}}, outcome{rates: []float64{100, 100, 100}}
	chosen := engineSettings{Consumers: 2, MaxBlockSize: 65536}
	r := &Report{Mode: "quick", Rows: 3, Rounds: 3,
		Settings:   map[string]string{"engine": chosen.String(), "stream_flush_interval_ms": "7500"},
		Figures:    []Figure{rateFigure("writer", "events/s", wr).against("client", wr, client, ">= 0.90")},
		EngineGrid: []EngineTrial{{engineSettings: engineSettings{Consumers: 1, MaxBlockSize: 65536}, Rate: 500}, {engineSettings: chosen, Rate: 600}},
		Latency:    []LatRow{{Rate: 20000, Achieved: 19990, Events: 200000, P50ms: 200, P99ms: 400, Maxms: 500, SchedP50ms: 210, SchedP99ms: 420, SchedMaxms: 520, BatchAge: "250ms"}},
	}
	md := markdown(r)
	require.Contains(t, md, "| writer | 90.00 events/s | 200 | 90.00, 200, 80.00 | client | 0.90 | 2.00 | >= 0.90 |")
	require.Contains(t, md, "|  | 1 | 65536 | 500 rows/s |")
	require.Contains(t, md, "| fastest, used in the rounds | 2 | 65536 | 600 rows/s |")
	require.Contains(t, md, "| 20000 events/s | 20000/s | 19990/s | 200000 | 200 ms | 400 ms | 500 ms | 210 ms | 420 ms | 520 ms | 250ms |")
}
