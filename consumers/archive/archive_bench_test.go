package archive_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/archive"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// BenchmarkArchiveDay archives a day of 20,000 events (as the load
// generator's: a few hundred bytes each) and reports the archive's bytes
// per event and events per second.
func BenchmarkArchiveDay(b *testing.B) {
	const n = 20_000
	ck, err := logtest.NewKey(origin)
	require.NoError(b, err)
	mk, err := logtest.NewKey("manifests." + origin)
	require.NoError(b, err)
	log := logtest.New(origin, "ws_1")
	rows := &fakeRows{}
	for i := range n {
		at := day.Add(time.Duration(i) * 4 * time.Second)
		r := migrations.Row{WorkspaceID: "ws_1", Timestamp: at.Truncate(time.Second), TimestampNs: at.UnixNano(),
			ID: fmt.Sprintf("evt_%016x", uint64(i)*0x9e3779b97f4a7c15), Event: "Warehouses Disabled", Category: "Warehouses",
			ActorType: "user", ActorID: fmt.Sprintf("usr_%d", i%50), ActorName: "Alice Example", ActorEmail: "alice@example.com",
			ResourceType: "warehouse", ResourceID: fmt.Sprintf("wh_%d", i%200), ResourceName: "Primary warehouse",
			Changes:   fmt.Sprintf(`{"enabled":{"old":true,"new":false},"rows":{"old":%d,"new":%d}}`, i, i+1),
			ContextIP: "203.0.113.7", ContextUserAgent: "Mozilla/5.0 (X11; Linux x86_64)", ContextRequestID: fmt.Sprintf("req_%d", i),
			Properties: `{"plan":"business"}`, ReceivedAt: at.Truncate(time.Second), ReceivedAtNs: at.UnixNano() + 2e6}
		log.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
		rows.rows = append(rows.rows, r)
	}
	_, err = log.Sign(ck, day.Add(48*time.Hour))
	require.NoError(b, err)
	var size int64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		a, err := archive.New(dir, rows, log, mk.Signer, verifiersOf(b, mk), nil)
		require.NoError(b, err)
		b.StartTimer()
		require.NoError(b, a.Archive(context.Background(), "ws_1", day))
		b.StopTimer()
		st, err := os.Stat(filepath.Join(dir, "ws_1", "2025", "03", "09.ndjson.gz"))
		require.NoError(b, err)
		size = st.Size()
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/n, "bytes/event")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
