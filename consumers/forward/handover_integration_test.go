package forward

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/topics"
)

// Resends that straddle a partition-count increase: a workspace's first
// events, one of them later resent with another timestamp and one resent
// identical, sit unread on
// its old partition behind a backlog, while the resend and its newer
// events arrive on its new partition, owned by the other writer and the
// other forwarder. The new partition waits for the old one (consumers/
// handover): the first version of the resent event is the one stored and
// the one forwarded, once, the identical resend is not forwarded again,
// and the workspace's events are forwarded in
// the order they were produced.
func TestAResendStraddlingAPartitionIncreaseIsStoredAndForwardedOnce(t *testing.T) {
	proctest.Require(t)
	const before, after, backlog = 2, 4, 20_000
	s := newStack(t, true, before)
	s.opts = append(s.opts, kgo.MetadataMaxAge(300*time.Millisecond), kgo.MetadataMinAge(50*time.Millisecond),
		kgo.Balancers(crossBalancer{}))
	conn, ch := stacktest.ClickHouse(t, 90)
	sk := newSink(t)

	var moved, busy string // moved: old -> new partition; busy stays on moved's old one
	for i := 0; moved == "" || busy == ""; i++ {
		ws := fmt.Sprintf("ws_st%d", i)
		old, now := idwindow.PartitionOf(ws, before), idwindow.PartitionOf(ws, after)
		switch {
		case moved == "" && now >= before:
			moved = ws
		case moved != "" && busy == "" && old == idwindow.PartitionOf(moved, before) && now == old:
			busy = ws
		}
	}
	oldPart, newPart := idwindow.PartitionOf(moved, before), idwindow.PartitionOf(moved, after)
	s.enable(t, moved, sk.srv.URL, false)
	s.enable(t, busy, sk.srv.URL, false)

	wcfg := writerConfig(t, s, "writer-straddle-", 500)
	fcfg := s.config()
	fcfg.RequestTimeout = Defaults().RequestTimeout
	fcfg.WriterGroup = wcfg.Group
	var fwdRegs []*prometheus.Registry
	start := func() (stop func()) {
		var stops []func()
		for range 2 {
			stops = append(stops, startWriter(t, wcfg, s.opts, writer.NewClickHouseSink(conn, ch.Database)))
			fwdRegs = append(fwdRegs, prometheus.NewRegistry())
			_, stopF := s.run(t, fcfg, Deps{Registry: idwindow.NewRegistry(conn, ch.Database), Reg: fwdRegs[len(fwdRegs)-1]})
			stops = append(stops, stopF)
		}
		waitStable(t, s, wcfg.Group, fcfg.Group)
		return func() {
			for _, stop := range stops {
				stop()
			}
		}
	}
	// The consumers record the count before the increase, then stop.
	start()()

	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, s.opts...), kgo.DefaultProduceTopic(s.events),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	require.NoError(t, err)
	t.Cleanup(prod.Close)
	first := map[string]time.Time{}
	produce := func(part int32, evs ...event.Event) {
		recs := make([]*kgo.Record, 0, len(evs))
		for i := range evs {
			v, err := event.Marshal(&evs[i])
			require.NoError(t, err)
			if _, ok := first[evs[i].WorkspaceID+"/"+evs[i].ID]; !ok {
				first[evs[i].WorkspaceID+"/"+evs[i].ID] = evs[i].Timestamp
			}
			recs = append(recs, &kgo.Record{Key: []byte(evs[i].WorkspaceID), Value: v, Partition: part,
				Headers: []kgo.RecordHeader{{Key: topics.HeaderEvent, Value: []byte(evs[i].Event)}}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, prod.ProduceSync(ctx, recs...).FirstErr())
	}
	// While no consumer runs: the backlog, then the moved workspace's first
	// events, on its old partition.
	var evs []event.Event
	for i := range backlog {
		evs = append(evs, mkEvent(busy, i, "Source Created", ""))
		if len(evs) == 2000 {
			produce(oldPart, evs...)
			evs = evs[:0]
		}
	}
	for i := range 10 {
		evs = append(evs, mkEvent(moved, i, "Source Created", fmt.Sprintf(`{"i": %d}`, i)))
	}
	produce(oldPart, evs...)

	adm := kadm.NewClient(prod)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreatePartitions(ctx, after-before, s.events)
	require.NoError(t, err)
	require.NoError(t, resp[s.events].Err)

	// On its new partition: a resend of event 5 with another timestamp, an
	// identical resend of event 3, then its next events.
	resend := mkEvent(moved, 5, "Source Created", `{"i": 5}`)
	resend.Timestamp = resend.Timestamp.Add(time.Hour)
	evs = []event.Event{resend, mkEvent(moved, 3, "Source Created", `{"i": 3}`)}
	for i := 10; i < 20; i++ {
		evs = append(evs, mkEvent(moved, i, "Source Created", fmt.Sprintf(`{"i": %d}`, i)))
	}
	eventually(t, func() bool {
		prod.ForceMetadataRefresh()
		leader, _, err := prod.PartitionLeader(s.events, newPart)
		return err == nil && leader >= 0
	}, "the producer knows partition %d", newPart)
	produce(newPart, evs...)

	start()
	total := backlog + 20
	eventually(t, func() bool { return len(stacktest.VisibleIDs(t, conn, ch.Database)) >= total }, "every event stored")
	eventually(t, func() bool { return len(sk.ids("key-"+moved))+len(sk.ids("key-"+busy)) >= total }, "every event forwarded")
	eventually(t, func() bool { return registryCount(t, conn, ch.Database) >= uint64(total) }, "every stored id registered")

	visible := stacktest.VisibleIDs(t, conn, ch.Database)
	require.Len(t, visible, total, "nothing lost, nothing extra")
	for k, n := range visible {
		require.Equal(t, 1, n, "%s visible once", k)
	}
	requireFirstTimestamps(t, conn, ch.Database, first)
	calls := sk.calls("key-" + moved)
	require.Len(t, calls, 20, "neither resend is forwarded")
	for _, c := range calls {
		ts, err := time.Parse(time.RFC3339Nano, c.Timestamp)
		require.NoError(t, err)
		require.True(t, first[moved+"/"+c.MessageID].Equal(ts), "%s forwarded with its first timestamp", c.MessageID)
	}
	require.Equal(t, expectIDs(moved, 0, 20), sk.ids("key-"+moved), "forwarded in the order produced, across the move")
	holds := 0.0
	for _, r := range fwdRegs {
		holds += counter(t, r, "audittrail_forwarder_handover_holds_total")
	}
	require.Positive(t, holds, "the new partition was held")
	var n uint64
	require.NoError(t, conn.QueryRow(context.Background(), fmt.Sprintf("SELECT count() FROM %s.%s WHERE topic = ?",
		ch.Database, migrations.PartitionCountsTable), s.events).Scan(&n))
	require.GreaterOrEqual(t, n, uint64(2), "both counts recorded")
}
