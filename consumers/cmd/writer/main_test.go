package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
)

// process is a writer binary under test.
type process struct {
	t    *testing.T
	bin  string
	env  []string
	addr string // the port the running writer chose
	proc *proctest.Process
}

func newProcess(t *testing.T, extraEnv ...string) *process {
	proctest.Require(t)
	bins, err := proctest.Build(t.TempDir(), "consumers/cmd/writer")
	require.NoError(t, err)
	bin := bins["writer"]
	names := stacktest.Topics(t, 4, "events", "dlq")
	_, ch := stacktest.ClickHouse(t, 90)
	p := &process{t: t, bin: bin, env: append([]string{
		"AUDITTRAIL_KAFKA_BROKERS=" + strings.Join(stacktest.Brokers(), ","),
		"AUDITTRAIL_KAFKA_TOPIC=" + names[0],
		"AUDITTRAIL_WRITER_DLQ_TOPIC=" + names[1],
		"AUDITTRAIL_WRITER_GROUP=writer-proc-" + stacktest.Suffix(),
		"AUDITTRAIL_CLICKHOUSE_ADDR=" + ch.Addr,
		"AUDITTRAIL_CLICKHOUSE_DATABASE=" + ch.Database,
		"AUDITTRAIL_WRITER_ADDR=" + proctest.AnyPort,
	}, extraEnv...)}
	t.Cleanup(func() {
		if p.proc != nil {
			p.proc.Stop(syscall.SIGKILL, time.Minute)
			if t.Failed() {
				t.Logf("writer logs:\n%s", p.proc.Out.String())
			}
		}
	})
	return p
}

func (p *process) value(key string) string {
	for _, kv := range p.env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// start starts the writer on a port of its choosing and waits until it is
// ready there.
func (p *process) start() {
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	proc, err := proctest.Start(cmd)
	require.NoError(p.t, err)
	p.proc = proc
	p.addr, err = proc.Ready(context.Background(), "http", 60*time.Second)
	require.NoError(p.t, err, "writer ready")
}

// metric sums a metric's samples from /metrics (-1 when the writer does
// not answer).
func (p *process) metric(name string) float64 {
	v, _, err := proctest.Metric(context.Background(), p.addr, name)
	if err != nil {
		return -1
	}
	return v
}

func (p *process) producer() *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.DefaultProduceTopic(p.value("AUDITTRAIL_KAFKA_TOPIC")))
	require.NoError(p.t, err)
	p.t.Cleanup(cl.Close)
	return cl
}

func records(t *testing.T, from, n int) ([]*kgo.Record, map[string]bool) {
	now := time.Now().UTC()
	want := map[string]bool{}
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		ws, id := fmt.Sprintf("ws_%d", i%11), fmt.Sprintf("evt_%06d", i)
		e := event.Event{ID: id, WorkspaceID: ws, Event: "Warehouses Modified", Category: "Warehouses",
			Timestamp: now.Add(-time.Duration(i) * time.Millisecond), ReceivedAt: now, Actor: event.Actor{Type: "user", ID: "u"}}
		b, err := event.Marshal(&e)
		require.NoError(t, err)
		recs = append(recs, &kgo.Record{Key: []byte(ws), Value: b})
		want[ws+"/"+id] = true
	}
	return recs, want
}

func visible(t *testing.T, p *process) map[string]int {
	conn, _ := stacktest.ClickHouseConn(t)
	require.NotNil(t, conn)
	defer conn.Close()
	return stacktest.VisibleIDs(t, conn, p.value("AUDITTRAIL_CLICKHOUSE_DATABASE"))
}

func requireExactly(t *testing.T, got map[string]int, want map[string]bool) {
	t.Helper()
	for id, n := range got {
		require.True(t, want[id], "unexpected stored id %s", id)
		require.Equal(t, 1, n, "visible duplicate of %s", id)
	}
	require.Len(t, got, len(want), "every produced event stored exactly once")
}

// TestSIGTERMFlushesCommitsAndExits sends SIGTERM while a whole batch is
// buffered (a long batch age): the writer must insert it, commit the
// offsets and exit 0 within its shutdown deadline.
func TestSIGTERMFlushesCommitsAndExits(t *testing.T) {
	p := newProcess(t, "AUDITTRAIL_WRITER_BATCH_AGE=1m", "AUDITTRAIL_WRITER_BATCH_SIZE=1000000")
	p.start()
	recs, want := records(t, 0, 2000)
	require.NoError(t, p.producer().ProduceSync(context.Background(), recs...).FirstErr())
	require.Eventually(t, func() bool { return p.metric("audittrail_writer_consumer_lag") == 0 && lagSeen(p) },
		30*time.Second, 50*time.Millisecond, "everything fetched and buffered")
	require.Empty(t, visible(t, p), "nothing inserted before the batch is due")

	require.NoError(t, p.proc.Cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.proc.Exited:
		require.True(t, p.proc.Cmd.ProcessState.Success(), "clean exit: %s", p.proc.Cmd.ProcessState)
	case <-time.After(30 * time.Second):
		t.Fatal("writer did not exit within 30 s of SIGTERM")
	}
	requireExactly(t, visible(t, p), want)

	// The offsets were committed: the group is at the end of every partition.
	adm, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...))
	require.NoError(t, err)
	defer adm.Close()
	ka := kadm.NewClient(adm)
	ctx := context.Background()
	ends, err := ka.ListEndOffsets(ctx, p.value("AUDITTRAIL_KAFKA_TOPIC"))
	require.NoError(t, err)
	committed, err := ka.FetchOffsets(ctx, p.value("AUDITTRAIL_WRITER_GROUP"))
	require.NoError(t, err)
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		require.True(t, ok || o.Offset == 0, "partition %d committed", o.Partition)
		if ok {
			require.Equal(t, o.Offset, c.At, "partition %d committed to its end", o.Partition)
		}
	})
}

// lagSeen reports whether the writer has fetched from every partition that
// holds records (it exports a lag sample per fetched partition).
func lagSeen(p *process) bool {
	_, n, err := proctest.Metric(context.Background(), p.addr, "audittrail_writer_consumer_lag")
	return err == nil && n == 4
}

// TestSIGKILLMidStreamLosesNothing kills the writer with SIGKILL while
// events stream in and batches are in flight, restarts it, and checks that
// the stored set equals the produced set with no visible duplicates.
func TestSIGKILLMidStreamLosesNothing(t *testing.T) {
	p := newProcess(t, "AUDITTRAIL_WRITER_BATCH_AGE=200ms", "AUDITTRAIL_WRITER_BATCH_SIZE=700")
	p.start()
	cl := p.producer()
	want := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx := context.Background()
	wg.Go(func() {
		for i := range 20 {
			recs, w := records(t, i*500, 500)
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			for id := range w {
				want[id] = true
			}
			mu.Unlock()
		}
	})
	require.Eventually(t, func() bool { return len(visible(t, p)) >= 1500 }, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, p.proc.Cmd.Process.Signal(syscall.SIGKILL))
	<-p.proc.Exited
	killedAt := len(visible(t, p))
	wg.Wait()
	require.Less(t, killedAt, len(want), "the kill happened mid-stream")

	p.start()
	require.Eventually(t, func() bool { return len(visible(t, p)) >= len(want) }, 90*time.Second, 100*time.Millisecond)
	requireExactly(t, visible(t, p), want)
}
