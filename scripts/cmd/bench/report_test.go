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

// The writer's CPU is compared with clickhouse-client's part by part, as
// the goals are stated: the process (writer against the client
// process) and the ClickHouse server, each a median of the rounds' ratios.
func TestFiguresSplitCPUIntoProcessAndServer(t *testing.T) {
	client := outcome{rates: []float64{100, 100, 100}, cpu: []float64{5, 5, 5}, proc: []float64{2, 2, 2}, server: []float64{3, 3, 3}}
	wr := outcome{rates: []float64{80, 90, 85}, cpu: []float64{9, 10, 11}, proc: []float64{5, 6, 7}, server: []float64{4, 3, 5}}
	f := figures(baseline{}, []outcome{client, wr})
	byName := map[string]Figure{}
	for _, x := range f {
		byName[x.Name] = x
	}
	p := byName["process CPU per million: the writer (bench process)"]
	require.Equal(t, 6.0, p.Value)
	require.InDelta(t, 3.0, p.Ratio, 1e-9, "median of 5/2, 6/2, 7/2")
	require.Equal(t, "<= 1.5", p.Target)
	s := byName["ClickHouse server CPU per million: writer run"]
	require.Equal(t, 4.0, s.Value)
	require.InDelta(t, 4.0/3, s.Ratio, 1e-9, "median of 4/3, 3/3, 5/3")
	require.Equal(t, "<= 1.1", s.Target)
}
