package sealer

import (
	"context"
	"syscall"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// BenchmarkSealRound measures the sealer's own work on one round of
// 20,000 records the writer stored (the default batch size), everything
// but Kafka and the network: decoding and validating each record, the
// offsets record's verdicts (answered from memory), the leaves and their
// stored hashes, and the inserts of hashes and leaves as the driver
// encodes their native blocks (a fake connection, no server). Each round
// starts from empty logs of the 1,000 workspaces (loaded from a store
// that holds nothing), so every record gets a leaf. The events/s it
// reports are per core-second of the benchmark's goroutine.
func BenchmarkSealRound(b *testing.B) {
	const n = 20000
	g, err := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Spread: 72 * time.Hour, Seed: 42}, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	recs := make([]*kgo.Record, n)
	offsets := make(map[At]migrations.StoredOffset, n)
	for i := range recs {
		e := g.Next()
		e.ReceivedAt = now
		v, _ := event.Marshal(&e)
		r := &kgo.Record{Topic: "audit-events", Partition: int32(i % 6), Offset: int64(i / 6), Key: []byte(e.WorkspaceID), Value: v}
		recs[i] = r
		offsets[At{r.Topic, r.Partition, r.Offset}] = migrations.StoredOffset{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
			Outcome: migrations.OutcomeStored, WorkspaceID: e.WorkspaceID, ID: e.ID, TimestampNs: e.Timestamp.UnixNano(), ReceivedAtNs: now.UnixNano()}
	}
	store := &benchStore{ClickHouseStore: NewClickHouseStore(&encodingConn{}, "bench"), offsets: offsets}
	s := &Sealer{now: clock}
	ctx := context.Background()
	b.ReportAllocs()
	var cpu0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu0)
	for b.Loop() {
		s.seq = &sequencer{store: store, now: clock, trees: map[string]*tree{}, maxSeen: 1_000_000, lookback: 2 * time.Hour, recent: 4 * n}
		items := make([]Item, 0, n)
		for _, r := range recs {
			it, ok := s.decode(r)
			if !ok || it.Record == nil {
				b.Fatalf("record %d not decoded or not validated", r.Offset)
			}
			items = append(items, it)
		}
		out, err := s.seq.seal(ctx, items)
		if err != nil || len(out.Leaves) == 0 || len(out.Leaves)+out.Repeats != n {
			b.Fatalf("%v: %d leaves, %d repeats of %d", err, len(out.Leaves), out.Repeats, n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	// CPU time, GC included: steadier than wall time on a shared machine.
	var cpu1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &cpu1)
	used := cpu1.Utime.Nano() + cpu1.Stime.Nano() - cpu0.Utime.Nano() - cpu0.Stime.Nano()
	b.ReportMetric(float64(used)/float64(n*b.N), "cpu-ns/event")
}

// benchStore answers the offsets record from memory, holds no logs and
// no rows, fences nothing, and appends through the ClickHouse store (on
// an encodingConn).
type benchStore struct {
	*ClickHouseStore
	offsets map[At]migrations.StoredOffset
}

func (s *benchStore) Offsets(_ context.Context, spans []Span) (map[At]migrations.StoredOffset, error) {
	out := make(map[At]migrations.StoredOffset, len(s.offsets))
	for _, sp := range spans {
		for off := sp.From; off <= sp.To; off++ {
			at := At{sp.Topic, sp.Part, off}
			if o, ok := s.offsets[at]; ok {
				out[at] = o
			}
		}
	}
	return out, nil
}

func (s *benchStore) Rows(context.Context, []Key) (map[Key]migrations.Row, error) {
	return map[Key]migrations.Row{}, nil
}

func (s *benchStore) Load(_ context.Context, wss []string, seenFrom int64, _, _ int) (map[string]State, error) {
	out := make(map[string]State, len(wss))
	for _, ws := range wss {
		out[ws] = State{SeenFrom: seenFrom}
	}
	return out, nil
}

func (s *benchStore) HasLeaves(context.Context, string, []Key) (map[Key]bool, error) {
	return map[Key]bool{}, nil
}

func (s *benchStore) Sizes(_ context.Context, near map[string]int64) (map[string]int64, error) {
	return near, nil
}

// encodingConn is a connection whose batches encode their native blocks
// as the driver sends them, and send them nowhere.
type encodingConn struct {
	Conn
	buf chproto.Buffer
}

func (c *encodingConn) PrepareBatch(_ context.Context, query string, _ ...driver.PrepareBatchOption) (driver.Batch, error) {
	var names, types []string
	for _, t := range []struct {
		insert func(string) string
		names  []string
		types  []string
	}{
		{migrations.Hashes.Insert, migrations.Hashes.InsertColumns(), migrations.Hashes.InsertTypes()},
		{migrations.Leaves.Insert, migrations.Leaves.InsertColumns(), migrations.Leaves.InsertTypes()},
	} {
		if t.insert("bench") == query {
			names, types = t.names, t.types
		}
	}
	blk := proto.NewBlock()
	for i, name := range names {
		if err := blk.AddColumn(name, column.Type(types[i])); err != nil {
			return nil, err
		}
	}
	return &encodingBatch{conn: c, blk: blk}, nil
}

type encodingBatch struct {
	driver.Batch
	conn *encodingConn
	blk  *proto.Block
}

func (b *encodingBatch) Append(v ...any) error           { return b.blk.Append(v...) }
func (b *encodingBatch) Column(i int) driver.BatchColumn { return &encodingColumn{b.blk.Columns[i]} }
func (b *encodingBatch) Abort() error                    { return nil }

func (b *encodingBatch) Flush() error {
	err := b.blk.Encode(&b.conn.buf, 54412)
	b.conn.buf.Reset()
	b.blk.Reset()
	return err
}

func (b *encodingBatch) Send() error { return b.Flush() }

type encodingColumn struct{ col column.Interface }

func (c *encodingColumn) Append(v any) error {
	_, err := c.col.Append(v)
	return err
}

func (c *encodingColumn) AppendRow(v any) error { return c.col.AppendRow(v) }
