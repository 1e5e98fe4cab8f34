package sealer_test

import (
	"context"
	"fmt"
	"strings"
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
// offsets record in use, only the sample reads back, every copy).
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

func (c *sampleStore) Copies(ctx context.Context, keys []sealer.Key) (map[sealer.Key][]migrations.Row, error) {
	c.mu.Lock()
	c.calls = append(c.calls, len(keys))
	c.mu.Unlock()
	return c.ClickHouseStore.Copies(ctx, keys)
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
// stored row changed by ALTER UPDATE, another by a conflicting insert of
// its key, and a third by a conflicting insert dated 1971 (inserted_at:
// not the last inserted copy), all after the writer stored them and
// before the sealer sealed them, are found by the round's sample (sized
// to cover the round): counted as altered, the rest as matching; the
// leaves are the records' all the same.
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
	// A copy of evt_5 with another actor and an inserted_at of 1971: a
	// read of the last inserted copy sees the original, the API's reads
	// and the merges may keep this one.
	cols := strings.Join(migrations.InsertColumns, ", ")
	sel := strings.Replace(cols, "actor_name", "'Mallory' AS actor_name", 1)
	require.NoError(t, s.conn.Exec(ctx, "INSERT INTO "+s.db+"."+migrations.Table+" ("+cols+", inserted_at) SELECT "+sel+
		", toDateTime('1971-01-01 00:00:00', 'UTC') FROM "+s.db+"."+migrations.Table+" WHERE workspace_id = 'ws_t' AND id = 'evt_5'"))
	k5 := sealer.Key{WorkspaceID: "ws_t", TimestampNs: ts.Add(5 * time.Millisecond).UnixNano(), ID: "evt_5"}
	latest, err := sealer.NewClickHouseStore(s.conn, s.db).Rows(ctx, []sealer.Key{k5})
	require.NoError(t, err)
	require.NotEqual(t, "Mallory", latest[k5].ActorName, "the last inserted copy is the original")

	reg := prometheus.NewRegistry()
	store := &sampleStore{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
	defer s.sealerWith(store, reg, func(c *sealer.Config) { c.Sample = 1000 })()
	require.Eventually(t, func() bool { size, _ := s.latest("ws_t"); return size == 6 }, 30*time.Second, 100*time.Millisecond,
		"every stored event sealed")
	// The sample is read off the sealer's loop: its counts come after.
	require.Eventually(t, func() bool { return sampled(t, reg, "altered") == 3 && sampled(t, reg, "match") == 3 }, 10*time.Second, 50*time.Millisecond,
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
	// Read off the sealer's loop: the counts come after.
	require.Eventually(t, func() bool { return sampled(t, reg, "match") == float64(leaves) }, 10*time.Second, 50*time.Millisecond,
		"every leaf's row read and matching (match %v of %d)", sampled(t, reg, "match"), leaves)
	require.Zero(t, sampled(t, reg, "skipped"))
	require.Zero(t, sampled(t, reg, "altered"))
	require.Zero(t, sampled(t, reg, "absent"))
	require.Zero(t, sampled(t, reg, "later_copy"))
}

// TestTheSampleReadsAtMostItsSizeARound: with a sample of 3 and rounds of
// up to 150 records, no read-back names more than 3 keys, and every key
// read is counted by the sample's results. The reads are not paced here
// (SampleEvery 0), so that each round's sample is read on its own
// (paced, the rounds' samples between two reads are read together:
// TestSampleReadsArePaced).
func TestTheSampleReadsAtMostItsSizeARound(t *testing.T) {
	s := newStack(t)
	defer s.writer()()
	reg := prometheus.NewRegistry()
	store := &sampleStore{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db)}
	defer s.sealerWith(store, reg, func(c *sealer.Config) { c.Sample, c.SampleEvery = 3, 0 })()
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
