package forward

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Partitions are added to the events topic while events are produced for
// several workspaces, some of which move to a new partition, with two
// writers and two forwarders sharing the partitions. Resends (identical
// copies, and copies with another timestamp of events stored before the
// increase) go with the stream. Read as the API reads, ClickHouse holds
// each produced id exactly once with its first timestamp, and the sink
// received each id exactly once.
func TestPartitionIncreaseDuringIngestLosesAndDuplicatesNothing(t *testing.T) {
	proctest.Require(t)
	const before, after = 2, 4
	s := newStack(t, true, before)
	// Clients notice the new partitions within this age (franz-go's
	// default is 5 minutes); the consumers read them from their start.
	// crossBalancer gives one instance partition 0 and the other 1, then
	// 0 and 3 and 1 and 2: every moved workspace moves to the other
	// instance, which has to learn its ids from the registry.
	fast := []kgo.Opt{kgo.MetadataMaxAge(300 * time.Millisecond), kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.Balancers(crossBalancer{})}
	s.opts = append(s.opts, fast...)
	conn, ch := stacktest.ClickHouse(t, 90)
	sk := newSink(t)

	var wss, moved []string
	want := map[[2]int32]int{{0, 2}: 3, {1, 3}: 2, {0, 0}: 2, {1, 1}: 1} // old -> new partition: how many workspaces
	for i := 0; len(wss) < 8; i++ {
		ws := fmt.Sprintf("ws_rp%d", i)
		k := [2]int32{idwindow.PartitionOf(ws, before), idwindow.PartitionOf(ws, after)}
		if want[k] == 0 {
			continue
		}
		want[k]--
		if k[0] != k[1] {
			moved = append(moved, ws)
		}
		wss = append(wss, ws)
		s.enable(t, ws, sk.srv.URL, false)
	}

	wcfg := writerConfig(t, s, "writer-repart-", 200)
	for range 2 {
		startWriter(t, wcfg, s.opts, writer.NewClickHouseSink(conn, ch.Database))
	}
	fcfg := s.config()
	// The default timeout: a request timed out on a loaded machine is
	// retried and reaches the sink twice, which is not what this test is
	// about.
	fcfg.RequestTimeout = Defaults().RequestTimeout
	fcfg.WriterGroup = wcfg.Group
	for range 2 {
		_, _ = s.run(t, fcfg, Deps{Registry: idwindow.NewRegistry(conn, ch.Database), Reg: prometheus.NewRegistry()})
	}

	// Both groups settle before the first event: a partition that changes
	// owner while a delivery is in flight is delivered again by the new
	// owner (at least once), which is not what this test is about.
	waitStable(t, s, wcfg.Group, fcfg.Group)

	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, s.opts...), kgo.DefaultProduceTopic(s.events),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond))...)
	require.NoError(t, err)
	t.Cleanup(prod.Close)
	p := &repartProducer{t: t, cl: prod, topic: s.events, first: map[string]time.Time{}}

	// Before the increase: new events and identical resends.
	next := 0
	for ; next < 60; next++ {
		p.round(wss, next, 0, 0)
	}
	registered := func(n int) func() bool {
		return func() bool { return registryCount(t, conn, ch.Database) >= uint64(n) }
	}
	eventually(t, registered(len(wss)*next), "the events before the increase are stored and registered")
	stored := next

	adm := kadm.NewClient(prod)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreatePartitions(ctx, after-before, s.events)
	require.NoError(t, err)
	require.NoError(t, resp[s.events].Err)

	// During and after the increase: new events, identical resends, and
	// resends with another timestamp of events stored before it.
	for n := 0; n < 400 && !p.switched(moved, after); n++ {
		p.round(wss, next, 0, after)
		next++
	}
	require.True(t, p.switched(moved, after), "the producer moved the moved workspaces to their new partitions")
	for end := next + 60; next < end; next++ {
		p.round(wss, next, stored, after)
	}
	total := len(wss) * next

	produced := map[string]bool{}
	for k := range p.first {
		produced[k] = true
	}
	require.Len(t, produced, total)
	eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) >= total }, "every event stored")
	eventually(t, func() bool {
		n := 0
		for _, ws := range wss {
			n += len(sk.ids("key-" + ws))
		}
		return n >= total
	}, "every event forwarded")
	eventually(t, registered(total), "every stored id registered")

	visible := stacktest.VisibleIDs(t, conn, ch.Database)
	require.Len(t, visible, total, "nothing lost, nothing extra")
	for k, n := range visible {
		require.True(t, produced[k], "stored %s was produced", k)
		require.Equal(t, 1, n, "%s visible once", k)
	}
	requireFirstTimestamps(t, conn, ch.Database, p.first)
	for _, ws := range wss {
		calls := sk.calls("key-" + ws)
		count := map[string]int{}
		for _, c := range calls {
			count[c.MessageID]++
			ts, err := time.Parse(time.RFC3339Nano, c.Timestamp)
			require.NoError(t, err)
			require.True(t, p.first[ws+"/"+c.MessageID].Equal(ts), "%s forwarded with its first timestamp", c.MessageID)
		}
		require.Len(t, count, next, "%s: every event forwarded", ws)
		for id, n := range count {
			require.Equal(t, 1, n, "%s forwarded once", id)
		}
		require.Equal(t, expectIDs(ws, 0, next), sk.ids("key-"+ws), "%s forwarded in order (moved ones across the move)", ws)
	}
	t.Logf("workspaces %d (moved %d), events %d, resends %d (%d with another timestamp)",
		len(wss), len(moved), total, p.resends, p.changed)
}

// repartProducer produces rounds of events and resends and remembers the
// first version of each id and the partition each workspace was last
// produced to.
type repartProducer struct {
	t       *testing.T
	cl      *kgo.Client
	topic   string
	mu      sync.Mutex
	first   map[string]time.Time // "ws/id" -> first timestamp
	last    map[string]int32     // workspace -> partition of its last record
	part    map[string]int32     // "ws/id" -> partition of its first version
	resends int
	changed int
}

// round produces event i of every workspace plus resends: an identical
// copy of event i-1-i%7 when it went to the partition the workspace's
// records go to now (any partition while grown is 0: before the
// increase), and, when stored > 1, a copy of one of the first stored
// events with another timestamp.
func (p *repartProducer) round(wss []string, i, stored, grown int) {
	var evs []event.Event
	for _, ws := range wss {
		e := mkEvent(ws, i, "Source Created", fmt.Sprintf(`{"i": %d}`, i))
		p.first[ws+"/"+e.ID] = e.Timestamp
		evs = append(evs, e)
		if j := i - 1 - i%7; j >= 0 {
			again := mkEvent(ws, j, "Source Created", fmt.Sprintf(`{"i": %d}`, j))
			p.mu.Lock()
			part, ok := p.part[ws+"/"+again.ID]
			p.mu.Unlock()
			if grown == 0 || ok && part == idwindow.PartitionOf(ws, grown) {
				evs = append(evs, again)
				p.resends++
			}
		}
		if stored > 1 {
			old := mkEvent(ws, i%stored, "Source Created", fmt.Sprintf(`{"i": %d}`, i%stored))
			old.Timestamp = old.Timestamp.Add(time.Hour)
			evs = append(evs, old)
			p.resends++
			p.changed++
		}
	}
	recs := make([]*kgo.Record, 0, len(evs))
	for i := range evs {
		v, err := event.Marshal(&evs[i])
		require.NoError(p.t, err)
		recs = append(recs, &kgo.Record{Topic: p.topic, Key: []byte(evs[i].WorkspaceID), Value: v,
			Headers: []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte(evs[i].Event)}}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := p.cl.ProduceSync(ctx, recs...)
	require.NoError(p.t, res.FirstErr())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last, p.part = map[string]int32{}, map[string]int32{}
	}
	for n, r := range res {
		ws := string(r.Record.Key)
		p.last[ws] = r.Record.Partition
		if k := ws + "/" + evs[n].ID; p.first[k].Equal(evs[n].Timestamp) {
			if _, ok := p.part[k]; !ok {
				p.part[k] = r.Record.Partition
			}
		}
	}
}

// switched reports whether the last records of the moved workspaces went
// to their partitions under the new count.
func (p *repartProducer) switched(moved []string, partitions int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ws := range moved {
		if p.last[ws] != idwindow.PartitionOf(ws, partitions) {
			return false
		}
	}
	return true
}

// writerConfig is a writer on the stack's topics with a group of its own
// (named prefix and a suffix, deleted at cleanup) and small, quick batches.
func writerConfig(t *testing.T, s *stack, prefix string, batch int) writer.Config {
	c := writer.Defaults()
	c.Topic, c.DeadLetterTopic = s.events, s.dlq
	c.Group = prefix + stacktest.Suffix()
	c.BatchSize, c.BatchAge = batch, 50*time.Millisecond
	c.RetryMin, c.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { deleteGroup(s, c.Group) })
	return c
}

// startWriter runs a writer and returns a stop function that waits for it.
func startWriter(t *testing.T, cfg writer.Config, opts []kgo.Opt, sink writer.Sink) func() {
	w, err := writer.New(cfg, opts, sink, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); require.NoError(t, <-done) }) }
	t.Cleanup(stop)
	return stop
}

func deleteGroup(s *stack, group string) {
	cl, err := kgo.NewClient(s.opts...)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = kadm.NewClient(cl).DeleteGroup(ctx, group)
}

// registryCount is how many ids the registry holds (registered twice
// counts twice).
func registryCount(t *testing.T, conn driver.Conn, db string) uint64 {
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM "+db+"."+migrations.IDsTable).Scan(&n))
	return n
}

// requireFirstTimestamps checks that every stored id, read as the API
// reads, has the timestamp of its first version.
func requireFirstTimestamps(t *testing.T, conn driver.Conn, db string, first map[string]time.Time) {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf(
		"SELECT workspace_id, id, timestamp_ns FROM %s.%s LIMIT 1 BY workspace_id, timestamp_ns, id", db, migrations.Table))
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var ws, id string
		var ns int64
		require.NoError(t, rows.Scan(&ws, &id, &ns))
		require.True(t, first[ws+"/"+id].Equal(time.Unix(0, ns)), "%s/%s stored with its first timestamp", ws, id)
	}
	require.NoError(t, rows.Err())
}

// crossBalancer is an eager balancer for two members (sorted by member
// id): partition k goes to member (k + k/2) % 2, so that with 2 partitions
// member 0 has 0 and member 1 has 1, and with 4 member 0 has 0 and 3 and
// member 1 has 1 and 2. No partition changes owner when partitions are
// added, and every workspace that moves changes owner.
type crossBalancer struct{}

func (crossBalancer) ProtocolName() string { return "audittrail-test-cross" }
func (crossBalancer) IsCooperative() bool  { return false }
func (crossBalancer) JoinGroupMetadata(interests []string, _ map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 0
	meta.Topics = interests
	return meta.AppendTo(nil)
}

func (crossBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

func (c crossBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	b, err := kgo.NewConsumerBalancer(c, members)
	if err != nil {
		return nil, nil, err
	}
	return b, b.MemberTopics(), nil
}

func (crossBalancer) Balance(b *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	members := append([]kmsg.JoinGroupResponseMember(nil), b.Members()...)
	slices.SortFunc(members, func(x, y kmsg.JoinGroupResponseMember) int { return strings.Compare(x.MemberID, y.MemberID) })
	plan := b.NewPlan()
	for topic, n := range topics {
		for k := range n {
			plan.AddPartition(&members[int(k+k/2)%len(members)], topic, k)
		}
	}
	return plan
}

// waitStable waits until each group has two members and is stable.
func waitStable(t *testing.T, s *stack, groups ...string) {
	t.Helper()
	cl, err := kgo.NewClient(s.opts...)
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		described, err := adm.DescribeGroups(ctx, groups...)
		if err != nil {
			return false
		}
		for _, g := range groups {
			if d := described[g]; d.Err != nil || d.State != "Stable" || len(d.Members) != 2 {
				return false
			}
		}
		return true
	}, "groups %v stable with two members", groups)
}
