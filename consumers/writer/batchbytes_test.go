package writer

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// sizedSink is a fakeSink that also records each insert's rows.
type sizedSink struct {
	*fakeSink
	mu    sync.Mutex
	sizes []int
}

func (s *sizedSink) Insert(ctx context.Context, rows []migrations.Row) error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(rows))
	s.mu.Unlock()
	return s.fakeSink.Insert(ctx, rows)
}

// TestABatchIsCutAtBatchBytes: records of 300 KiB with BatchBytes of 1 MiB
// (and room for 1,000 rows, a minute's age) are inserted four at a time,
// the batch cut once its records hold BatchBytes (so a batch holds at most
// BatchBytes plus one record), however the polls split them; each is
// stored once and committed.
func TestABatchIsCutAtBatchBytes(t *testing.T) {
	k := newKafka(t, 1)
	big := `{"blob":"` + strings.Repeat("x", 300<<10) + `"}`
	var recs []*kgo.Record
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("big_%d", i)
		now := time.Now().UTC()
		e := event.Event{ID: id, WorkspaceID: "ws_big", Event: "Source Modified", Timestamp: now, ReceivedAt: now,
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Properties: []byte(big)}
		require.NoError(t, event.Policy{}.Validate(&e))
		b, err := event.Marshal(&e)
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Key: []byte("ws_big"), Value: b, Partition: 0})
		ids = append(ids, id)
	}
	k.send(t, recs...)
	sink := &sizedSink{fakeSink: newFakeSink()}
	cfg := k.config(1000)
	cfg.BatchBytes = 1 << 20
	_, stop := start(t, cfg, k.client(), sink)
	require.Eventually(t, func() bool { return sink.storedAll(ids[:8]) }, 10*time.Second, 5*time.Millisecond,
		"two batches are cut by their bytes, long before their age")
	require.NoError(t, stop()) // the last two records are flushed on stop
	sink.mu.Lock()
	require.Equal(t, []int{4, 4, 2}, sink.sizes, "cut after the record that brings a batch to 1 MiB (4 x 300 KiB)")
	sink.mu.Unlock()
	_, stored := sink.counts()
	for _, id := range ids {
		require.Equal(t, 1, stored[id], id)
	}
	require.EqualValues(t, 10, k.committed(t, 0))
}
