package sealer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// BenchmarkKeptLeavesLookup measures one round's lookup of 1,000 new late
// keys (a backfill) of a held workspace that has 1,000,000 leaves in the
// long-term leaves table, on the real server: the cost a backfill pays
// per round (docs/retention.md, Known gaps).
func BenchmarkKeptLeavesLookup(b *testing.B) {
	conn, ch := stacktest.ClickHouse(b, 90)
	ctx := context.Background()
	table := ch.Database + "." + migrations.KeptLeavesTable
	err := conn.Exec(ctx, "INSERT INTO "+table+" (workspace_id, leaf_index, timestamp_ns, id, leaf_hash, sealed_at) SELECT 'ws_held', number, number, concat('evt_', toString(number)), toFixedString('"+
		strings.Repeat("h", 32)+"', 32), now() FROM system.numbers LIMIT 1000000")
	if err != nil {
		b.Fatal(err)
	}
	if err := conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
		b.Fatal(err)
	}
	keys := make([]sealer.Key, 1000)
	for i := range keys {
		keys[i] = sealer.Key{WorkspaceID: "ws_held", TimestampNs: int64(i), ID: fmt.Sprint("new_", i)}
	}
	store := sealer.NewClickHouseStore(conn, ch.Database)
	b.ResetTimer()
	for b.Loop() {
		has, err := store.KeptLeaves(ctx, keys)
		if err != nil || len(has) != 0 {
			b.Fatal(err, len(has))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/round")
}
