package sealer

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recs returns n records of partition p from offset 0, each with a value
// of size bytes.
func recs(p int32, n, size int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{Partition: p, Offset: int64(i), Value: make([]byte, size)}
	}
	return out
}

func TestARoundTakesAtMostBatchSizeRecordsAndBatchBytes(t *testing.T) {
	tests := []struct {
		name         string
		pending      map[int32][]*kgo.Record
		writerAt     map[int32]int64
		size, bytes  int
		wantPerParts map[int32]int
	}{
		{name: "by count, across partitions in order", pending: map[int32][]*kgo.Record{0: recs(0, 5, 10), 1: recs(1, 5, 10)},
			writerAt: map[int32]int64{0: 5, 1: 5}, size: 7, bytes: 1 << 20, wantPerParts: map[int32]int{0: 5, 1: 2}},
		{name: "by bytes", pending: map[int32][]*kgo.Record{0: recs(0, 10, 100), 1: recs(1, 10, 100)},
			writerAt: map[int32]int64{0: 10, 1: 10}, size: 100, bytes: 1_250, wantPerParts: map[int32]int{0: 10, 1: 2}},
		{name: "one record larger than the bytes still goes", pending: map[int32][]*kgo.Record{0: recs(0, 3, 5_000)},
			writerAt: map[int32]int64{0: 3}, size: 100, bytes: 1_000, wantPerParts: map[int32]int{0: 1}},
		{name: "only what the writer committed", pending: map[int32][]*kgo.Record{0: recs(0, 10, 10), 1: recs(1, 10, 10)},
			writerAt: map[int32]int64{0: 4}, size: 100, bytes: 1 << 20, wantPerParts: map[int32]int{0: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Sealer{cfg: Config{BatchSize: tt.size, BatchBytes: tt.bytes}, pending: tt.pending, writerAt: tt.writerAt}
			got := map[int32]int{}
			for i, r := range s.ready() {
				require.Equal(t, int64(got[r.Partition]), r.Offset, "record %d: each partition's leading records, in order", i)
				got[r.Partition]++
			}
			require.Equal(t, tt.wantPerParts, got)
		})
	}
}

func TestFetchingPausesOnRecordsOrBytesWaiting(t *testing.T) {
	tests := []struct {
		name          string
		pending       map[int32][]*kgo.Record
		paused        map[int32]bool
		maxRecs       int
		maxBytes      int
		pause, resume []int32
	}{
		{name: "under both", pending: map[int32][]*kgo.Record{0: recs(0, 3, 10), 1: recs(1, 3, 10)},
			paused: map[int32]bool{}, maxRecs: 4, maxBytes: 1_000},
		{name: "a partition at its record count", pending: map[int32][]*kgo.Record{0: recs(0, 4, 10), 1: recs(1, 3, 10)},
			paused: map[int32]bool{}, maxRecs: 4, maxBytes: 1_000, pause: []int32{0}},
		{name: "bytes in all pause every partition with records, not an empty one",
			pending: map[int32][]*kgo.Record{0: recs(0, 2, 300), 1: recs(1, 2, 300), 2: nil},
			paused:  map[int32]bool{}, maxRecs: 100, maxBytes: 1_000, pause: []int32{0, 1}},
		{name: "back under both resumes", pending: map[int32][]*kgo.Record{0: recs(0, 1, 300), 1: nil},
			paused: map[int32]bool{0: true, 1: true}, maxRecs: 100, maxBytes: 1_000, resume: []int32{0, 1}},
		{name: "already paused stays without a second pause", pending: map[int32][]*kgo.Record{0: recs(0, 5, 10)},
			paused: map[int32]bool{0: true}, maxRecs: 4, maxBytes: 1_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pause, resume := pauses(tt.pending, tt.paused, func(int32, []*kgo.Record) int { return tt.maxRecs }, tt.maxBytes)
			require.Equal(t, tt.pause, pause)
			require.Equal(t, tt.resume, resume)
		})
	}
}

func TestASealerYieldsWhileTheWriterLagsItsLagOrMore(t *testing.T) {
	ends := map[int32]int64{0: 1_000, 1: 500, 2: 300}
	tests := []struct {
		name     string
		writerAt map[int32]int64
		lag      int
		want     bool
	}{
		{name: "summed over partitions", writerAt: map[int32]int64{0: 900, 1: 450, 2: 300}, lag: 150, want: true},
		{name: "under the lag", writerAt: map[int32]int64{0: 900, 1: 451, 2: 300}, lag: 150, want: false},
		{name: "a partition without the writer's offset does not count", writerAt: map[int32]int64{0: 1_000}, lag: 1, want: false},
		{name: "a writer past a stale end counts nothing", writerAt: map[int32]int64{0: 1_200, 1: 400}, lag: 100, want: true},
		{name: "0 never yields", writerAt: map[int32]int64{0: 0, 1: 0, 2: 0}, lag: 0, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, yielding(ends, tt.writerAt, tt.lag))
		})
	}
}

func TestAPartitionReadsOneRoundAheadOfTheWriter(t *testing.T) {
	waiting := recs(0, 100, 10) // offsets 0-99
	tests := []struct {
		name     string
		writerAt map[int32]int64
		yield    bool
		want     int
	}{
		{name: "before the writer's first commit: one round", writerAt: map[int32]int64{}, want: 20},
		{name: "a round past what the writer committed", writerAt: map[int32]int64{0: 30}, want: 50},
		{name: "everything committed: MaxPending at most", writerAt: map[int32]int64{0: 100}, want: 80},
		{name: "while yielding: one round", writerAt: map[int32]int64{0: 30}, yield: true, want: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Sealer{cfg: Config{BatchSize: 20, MaxPending: 80}, writerAt: tt.writerAt, yield: tt.yield}
			require.Equal(t, tt.want, s.readAhead(0, waiting))
		})
	}
}
