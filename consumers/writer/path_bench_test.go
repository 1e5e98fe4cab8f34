package writer

import (
	"context"
	"syscall"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// BenchmarkBatchPath measures the writer's own work on one batch of
// 20,000 records already polled, everything but Kafka and the network:
// convert (decode, validate, flatten, key), buffer, the idempotency
// window, the insert's and the registry's native blocks as the driver
// encodes them, and the commit marks. Without a server or a broker it is
// steady on a shared machine, and runs under callgrind for instruction
// counts. The events/s it reports are per core-second of the benchmark's
// goroutine (convert spreads over GOMAXPROCS). Its offsets=true variant
// adds the offsets record (Config.RecordOffsets) and its native block.
func BenchmarkBatchPath(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "offsets=false", true: "offsets=true"}[on], func(b *testing.B) { benchmarkBatchPath(b, on) })
	}
}

func benchmarkBatchPath(b *testing.B, recordOffsets bool) {
	const n = 20000
	g, err := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Spread: 72 * time.Hour, Seed: 42}, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]*kgo.Record, n)
	now := time.Now()
	for i := range recs {
		e := g.Next()
		e.ReceivedAt = now
		v, _ := event.Marshal(&e)
		recs[i] = &kgo.Record{Topic: "audit-events", Partition: int32(i % 6), Offset: int64(i / 6), Key: []byte(e.WorkspaceID), Value: v}
	}
	cfg := Defaults()
	cfg.BatchSize = n + 1 // add flushes at BatchSize; the benchmark flushes itself
	cfg.RecordOffsets = recordOffsets
	w := &Writer{cfg: cfg, m: newMetrics(nil), now: func() time.Time { return now },
		policy: event.Policy{AllowCustomEvents: true}}
	w.newBuffers()
	events := nativeBlock(b, migrations.Events.InsertColumns(), migrations.Events.InsertTypes())
	ids := nativeBlock(b, migrations.EventIDs.InsertColumns(), migrations.EventIDs.InsertTypes())
	offsets := nativeBlock(b, migrations.Offsets.InsertColumns(), migrations.Offsets.InsertTypes())
	eventsBlock, idsBlock, offsetsBlock := migrations.Events.NewBlock(), migrations.EventIDs.NewBlock(), migrations.Offsets.NewBlock()
	var buf chproto.Buffer
	var conv []converted
	ctx := context.Background()
	b.ReportAllocs()
	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	for b.Loop() {
		w.ids = idwindow.New(cfg.DedupeWindow, cfg.DedupeMaxIDs) // every id is new again
		var flushErr error
		if conv, err = w.add(ctx, recs, conv, &flushErr); err != nil || len(w.rows) != n {
			b.Fatal(err, len(w.rows))
		}
		bt := &batch{rows: w.rows, filled: len(w.rows), parts: w.parts, offs: w.offs, offsets: w.skipped, keys: w.keys, ids: w.idBuf, recs: w.pending}
		rows, stored := w.fresh(bt)
		if len(rows) != n {
			b.Fatalf("%d rows to store, want %d", len(rows), n)
		}
		encodeBlocks(b, events, &buf, len(rows), func(lo, hi int) []any { return eventsBlock.Columns(rows[lo:hi]) })
		encodeBlocks(b, ids, &buf, len(stored), func(lo, hi int) []any { return idsBlock.Columns(stored[lo:hi]) })
		if recordOffsets {
			if len(bt.offsets) != n {
				b.Fatalf("%d offsets recorded, want %d", len(bt.offsets), n)
			}
			encodeBlocks(b, offsets, &buf, len(bt.offsets), func(lo, hi int) []any { return offsetsBlock.Columns(bt.offsets[lo:hi]) })
		}
		_ = lastOfEachPartition(bt.recs)
		bt.ids = stored
		w.recycleInto(bt)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	// CPU time, GC included: steadier than wall time on a shared machine.
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	used := cpu1.Utime.Nano() + cpu1.Stime.Nano() - cpu0.Utime.Nano() - cpu0.Stime.Nano()
	b.ReportMetric(float64(used)/float64(n*b.N), "cpu-ns/event")
}

// recycleInto gives the writer the batch's buffers back, emptied, as
// recycle and flushLocked do through the spare channel, and empties the
// buffer's byte count as flushLocked does (else a run of more than a few
// iterations reaches BatchBytes and add flushes to an inserter that is
// not there).
func (w *Writer) recycleInto(bt *batch) {
	w.spare = make(chan batch, 1)
	w.recycle(bt)
	sp := <-w.spare
	w.rows, w.parts, w.offs, w.skipped, w.keys, w.pending, w.idBuf = sp.rows, sp.parts, sp.offs, sp.offsets, sp.keys, sp.recs, sp.ids
	w.bytes = 0
}

// nativeBlock is the driver's block for an INSERT of the named columns.
func nativeBlock(b *testing.B, names, types []string) *proto.Block {
	blk := proto.NewBlock()
	for i, name := range names {
		if err := blk.AddColumn(name, column.Type(types[i])); err != nil {
			b.Fatal(err)
		}
	}
	return blk
}

// encodeBlocks appends n rows to blk in blocks of chconn.BlockRows and
// encodes each as the driver sends it (into buf, emptied after each).
func encodeBlocks(b *testing.B, blk *proto.Block, buf *chproto.Buffer, n int, cols func(lo, hi int) []any) {
	for lo := 0; lo < n; lo += chconn.BlockRows {
		hi := min(lo+chconn.BlockRows, n)
		for i, c := range cols(lo, hi) {
			if _, err := blk.Columns[i].Append(c); err != nil {
				b.Fatal(err)
			}
		}
		if err := blk.Encode(buf, 54412); err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		blk.Reset()
	}
}
