package sealer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/verify/tampertest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// sampleStore counts the keys each read-back by key names (with the
// offsets record in use, only the sample reads back).
type sampleStore struct {
	*sealer.ClickHouseStore
	mu    sync.Mutex
	calls []int
}

func (c *sampleStore) Rows(ctx context.Context, keys []sealer.Key) (map[sealer.Key]migrations.Row, error) {
	c.mu.Lock()
	c.calls = append(c.calls, len(keys))
	c.mu.Unlock()
	return c.ClickHouseStore.Rows(ctx, keys)
}

func (c *sampleStore) reads() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.calls...)
}

// sampled is the rows_sampled counter of result in reg.
func sampled(t *testing.T, reg *prometheus.Registry, result string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "audittrail_sealer_rows_sampled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestARowAlteredAfterTheWriterStoredItRaisesTheLiveSignal: on 18.16, a
// stored row changed by ALTER UPDATE and another by a conflicting insert
// of its key, both after the writer stored them and before the sealer
// sealed them, are found by the round's sample (sized to cover the
// round): counted as altered, the rest as matching; the leaves are the
// records' all the same.
func TestARowAlteredAfterTheWriterStoredItRaisesTheLiveSignal(t *testing.T) {
	s := newStack(t)
	stopWriter := s.writer()
	ts := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i := range 6 {
		recs = append(recs, record(t, s.events, "ws_t", fmt.Sprintf("evt_%d", i), ts.Add(time.Duration(i)*time.Millisecond)))
	}
	s.send(recs...)
	require.Eventually(t, func() bool { return len(stacktest.VisibleIDs(t, s.conn, s.db)) == 6 }, 30*time.Second, 50*time.Millisecond)
	stopWriter()
	ctx := context.Background()
	tamper := tampertest.Tamperer{Conn: s.conn, Database: s.db}
	require.NoError(t, tamper.SetActor(ctx, "ws_t", "evt_2", "usr_evil"))
	k4 := sealer.Key{WorkspaceID: "ws_t", TimestampNs: ts.Add(4 * time.Millisecond).UnixNano(), ID: "evt_4"}
	got, err := sealer.NewClickHouseStore(s.conn, s.db).Rows(ctx, []sealer.Key{k4})
	require.NoError(t, err)
	require.Contains(t, got, k4)
	forged := got[k4]
	forged.ActorName = "Mallory"
	forged.ReceivedAtNs++ // the copy the table keeps, even inserted in the same second
	require.NoError(t, tamper.InsertForged(ctx, forged))

	reg := prometheus.NewRegistry()
	store := &sampleStore{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
	defer s.sealerWith(store, reg, func(c *sealer.Config) { c.Sample = 1000 })()
	require.Eventually(t, func() bool { size, _ := s.latest("ws_t"); return size == 6 }, 30*time.Second, 100*time.Millisecond,
		"every stored event sealed")
	// The sample is read off the sealer's loop: its counts come after.
	require.Eventually(t, func() bool { return sampled(t, reg, "altered") == 2 && sampled(t, reg, "match") == 4 }, 10*time.Second, 50*time.Millisecond,
		"both changed rows found (altered: %v, match %v)", sampled(t, reg, "altered"), sampled(t, reg, "match"))
	require.Zero(t, sampled(t, reg, "absent"))
	require.Zero(t, sampled(t, reg, "later_copy"))
	reads := store.reads()
	total := 0
	for _, n := range reads {
		total += n
	}
	require.Equal(t, 6, total, "each leaf's row read once: %v", reads)
}

// TestAnUntouchedRunRaisesNoLiveSignal: the stack's traffic (identical
// resends, a resend with another timestamp, a backdated event, expired
// and undecodable records), every new leaf's row sampled: nothing
// altered, nothing absent.
func TestAnUntouchedRunRaisesNoLiveSignal(t *testing.T) {
	s := newStack(t)
	defer s.writer()()
	reg := prometheus.NewRegistry()
	defer s.sealerWith(nil, reg, func(c *sealer.Config) { c.Sample = 1000 })()
	workspaces := []string{"ws_a", "ws_b"}
	s.traffic(workspaces, 60, "one")
	visible := s.sealed(workspaces, 60*time.Second)
	leaves := 0
	for _, ws := range workspaces {
		s.checkLog(ws, visible)
		leaves += len(s.leaves(ws))
	}
	// Read off the sealer's loop: a round's sample offered while another
	// waits is skipped, and counted.
	require.Eventually(t, func() bool { return sampled(t, reg, "match")+sampled(t, reg, "skipped") == float64(leaves) }, 10*time.Second, 50*time.Millisecond,
		"every leaf's row read and matching, or skipped (match %v, skipped %v of %d)", sampled(t, reg, "match"), sampled(t, reg, "skipped"), leaves)
	require.Positive(t, sampled(t, reg, "match"))
	require.Zero(t, sampled(t, reg, "altered"))
	require.Zero(t, sampled(t, reg, "absent"))
	require.Zero(t, sampled(t, reg, "later_copy"))
}

// TestTheSampleReadsAtMostItsSizeARound: with a sample of 3 and rounds of
// up to 150 records, no read-back names more than 3 keys, and every key
// read is counted by the sample's results.
func TestTheSampleReadsAtMostItsSizeARound(t *testing.T) {
	s := newStack(t)
	defer s.writer()()
	reg := prometheus.NewRegistry()
	store := &sampleStore{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
	defer s.sealerWith(store, reg, func(c *sealer.Config) { c.Sample = 3 })()
	workspaces := []string{"ws_a", "ws_b"}
	s.traffic(workspaces, 100, "one")
	s.sealed(workspaces, 60*time.Second)
	var reads []int
	require.Eventually(t, func() bool {
		reads = store.reads()
		total := 0
		for _, n := range reads {
			total += n
		}
		return total > 0 && float64(total) == sampled(t, reg, "match")
	}, 10*time.Second, 50*time.Millisecond, "every key read is a sampled row, and matches")
	for _, n := range reads {
		require.LessOrEqual(t, n, 3, "a round reads at most its sample: %v", reads)
	}
	require.Contains(t, reads, 3, "rounds with 3 new leaves or more read 3")
}
