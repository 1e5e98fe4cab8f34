package sealer_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/consumers/writer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func quietLog() *slog.Logger {
	if os.Getenv("AUDITTRAIL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// stack is a writer and sealers on fresh topics and a fresh database.
type stack struct {
	t                  *testing.T
	conn               driver.Conn
	db                 string
	events, cps, dlq   string
	writerGroup, group string
	skey, vkey         string
	produce            *kgo.Client
}

func newStack(t *testing.T) *stack {
	conn, cfg := stacktest.ClickHouse(t, 90)
	names := stacktest.Topics(t, 2, "events", "checkpoints", "dlq")
	skey, vkey, err := note.GenerateKey(rand.Reader, "test.local")
	require.NoError(t, err)
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.DefaultProduceTopic(names[0]))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	sfx := stacktest.Suffix()
	return &stack{t: t, conn: conn, db: cfg.Database, events: names[0], cps: names[1], dlq: names[2],
		writerGroup: "writer-" + sfx, group: "sealer-" + sfx, skey: skey, vkey: vkey, produce: cl}
}

// run runs f until the returned stop is called.
func run(t *testing.T, f func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, f(ctx)) })
	return func() { cancel(); wg.Wait() }
}

func (s *stack) writer() (stop func()) {
	cfg := writer.Defaults()
	cfg.Topic, cfg.DeadLetterTopic, cfg.Group = s.events, s.dlq, s.writerGroup
	cfg.BatchSize, cfg.BatchAge = 200, 50*time.Millisecond
	w, err := writer.New(cfg, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, writer.NewClickHouseSink(s.conn, s.db), quietLog(), nil, nil)
	require.NoError(s.t, err)
	return run(s.t, w.Run)
}

func (s *stack) sealer(store sealer.Store) (stop func()) {
	return s.sealerWith(store, nil, nil)
}

// sealerWith runs a sealer on store (ClickHouse when nil) with its metrics
// in reg (none when nil) and its configuration changed by tweak (when set).
func (s *stack) sealerWith(store sealer.Store, reg prometheus.Registerer, tweak func(*sealer.Config)) (stop func()) {
	cfg := sealer.Defaults()
	cfg.Topic, cfg.CheckpointsTopic, cfg.Group, cfg.WriterGroup = s.events, s.cps, s.group, s.writerGroup
	cfg.SigningKey, cfg.VerifierKeys = s.skey, []string{s.vkey}
	cfg.CheckpointInterval = 200 * time.Millisecond
	cfg.BatchSize = 150
	cfg.SessionTimeout = 6 * time.Second
	// The live sample and the audit read rows back by key: off unless a
	// test turns them on, so that the tests counting the read-back count
	// the fallback only.
	cfg.Sample, cfg.Audit = 0, 0
	if tweak != nil {
		tweak(&cfg)
	}
	if store == nil {
		store = sealer.NewClickHouseStore(s.conn, s.db)
	}
	sl, err := sealer.New(cfg, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, store, nil, quietLog(), reg, time.Now)
	require.NoError(s.t, err)
	return run(s.t, sl.Run)
}

func record(t *testing.T, topic, ws, id string, ts time.Time) *kgo.Record {
	e := event.Event{ID: id, WorkspaceID: ws, Event: "Source Modified", Category: "Sources", Timestamp: ts, ReceivedAt: time.Now().UTC(),
		Actor: event.Actor{Type: "user", ID: "usr_1"}, Sender: event.Sender{CredentialID: "cred_1", Producer: "billing"}}
	b, err := event.Marshal(&e)
	require.NoError(t, err)
	return &kgo.Record{Topic: topic, Key: []byte(ws), Value: b}
}

func (s *stack) send(recs ...*kgo.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(s.t, s.produce.ProduceSync(ctx, recs...).FirstErr())
}

// traffic sends n events to each of the workspaces, identical resends of
// some, a resend of one with another timestamp, a backdated event, an
// expired one and an undecodable record; it returns the first records.
func (s *stack) traffic(workspaces []string, n int, tag string) []*kgo.Record {
	base := time.Now().UTC().Add(-time.Minute)
	var firsts, all []*kgo.Record
	for i := range n {
		for _, ws := range workspaces {
			r := record(s.t, s.events, ws, fmt.Sprintf("%s-%s-%d", tag, ws, i), base.Add(time.Duration(i)*time.Millisecond))
			firsts = append(firsts, r)
			all = append(all, r)
		}
	}
	ws := workspaces[0]
	for _, r := range firsts[:min(10, len(firsts))] { // identical resends
		all = append(all, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value})
	}
	all = append(all,
		record(s.t, s.events, ws, tag+"-"+ws+"-0", base.Add(time.Hour)),           // another timestamp: not stored
		record(s.t, s.events, ws, tag+"-backdated", base.Add(-10*24*time.Hour)),   // stored, older than the lookback
		record(s.t, s.events, ws, tag+"-expired", base.Add(-200*24*time.Hour)),    // skipped by the writer
		&kgo.Record{Topic: s.events, Key: []byte(ws), Value: []byte(`{"id": 1}`)}, // dead-lettered
	)
	s.send(all...)
	return firsts
}

type leafRow struct {
	index uint64
	ts    int64
	id    string
	hash  string
}

func (s *stack) leaves(ws string) []leafRow {
	rows, err := s.conn.Query(context.Background(), "SELECT leaf_index, timestamp_ns, id, leaf_hash FROM "+s.db+"."+migrations.LeavesTable+
		" WHERE workspace_id = ? ORDER BY leaf_index LIMIT 1 BY leaf_index", ws)
	require.NoError(s.t, err)
	defer rows.Close()
	var out []leafRow
	for rows.Next() {
		var l leafRow
		require.NoError(s.t, rows.Scan(&l.index, &l.ts, &l.id, &l.hash))
		out = append(out, l)
	}
	require.NoError(s.t, rows.Err())
	return out
}

// latest returns the workspace's latest stored checkpoint note.
func (s *stack) latest(ws string) (size uint64, text string) {
	rows, err := s.conn.Query(context.Background(), "SELECT size, note FROM "+s.db+"."+migrations.CheckpointsTable+
		" WHERE workspace_id = ? ORDER BY size DESC LIMIT 1", ws)
	require.NoError(s.t, err)
	defer rows.Close()
	if rows.Next() {
		require.NoError(s.t, rows.Scan(&size, &text))
	}
	return size, text
}

// checkLog asserts the workspace's log: every visible event has exactly
// one leaf, the indexes are 0..n-1, each leaf hash is the hash of the
// stored row, and the latest checkpoint (size n) verifies with the
// verifier key and has the root of the leaf hashes and of the stored
// hashes.
func (s *stack) checkLog(ws string, visible map[string]int) {
	t := s.t
	want := 0
	for k := range visible {
		if len(k) > len(ws) && k[:len(ws)+1] == ws+"/" {
			want++
		}
	}
	ls := s.leaves(ws)
	require.Equal(t, want, len(ls), "%s: one leaf per visible event", ws)
	ids := map[string]bool{}
	var keys []sealer.Key
	for i, l := range ls {
		require.EqualValues(t, i, l.index, "%s: no gap", ws)
		require.False(t, ids[l.id], "%s: id %s has two leaves", ws, l.id)
		ids[l.id] = true
		require.Equal(t, 1, visible[ws+"/"+l.id], "%s: leaf of a visible event", ws)
		keys = append(keys, sealer.Key{WorkspaceID: ws, TimestampNs: l.ts, ID: l.id})
	}
	stored, err := sealer.NewClickHouseStore(s.conn, s.db).Rows(context.Background(), keys)
	require.NoError(t, err)
	hashes := map[int64]tlog.Hash{}
	mem := tlog.HashReaderFunc(func(xs []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(xs))
		for i, x := range xs {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, l := range ls {
		r := stored[keys[i]]
		h := leaf.Hash(&r)
		require.Equal(t, string(h[:]), l.hash, "%s: leaf %d is the hash of the stored row", ws, i)
		add, err := tlog.StoredHashesForRecordHash(int64(i), h, mem)
		require.NoError(t, err)
		for j, sh := range add {
			hashes[tlog.StoredHashIndex(0, int64(i))+int64(j)] = sh
		}
	}
	root, err := tlog.TreeHash(int64(len(ls)), mem)
	require.NoError(t, err)

	size, text := s.latest(ws)
	require.EqualValues(t, len(ls), size, "%s: the latest checkpoint covers the log", ws)
	v, err := note.NewVerifier(s.vkey)
	require.NoError(t, err)
	n, err := note.Open([]byte(text), note.VerifierList(v))
	require.NoError(t, err, "%s: the checkpoint verifies with the verifier key", ws)
	origin, cpSize, cpRoot, err := sealer.ParseCheckpoint(n.Text)
	require.NoError(t, err)
	require.Equal(t, "audittrail.local/"+ws, origin)
	require.EqualValues(t, len(ls), cpSize)
	require.Equal(t, root, cpRoot, "%s: the root of the leaf hashes is the checkpoint's", ws)
	storedRoot, err := tlog.TreeHash(int64(len(ls)), sealer.NewClickHouseStore(s.conn, s.db).ReadHashes(context.Background(), ws))
	require.NoError(t, err)
	require.Equal(t, root, storedRoot, "%s: the stored hashes have the same root", ws)
}

// sealed waits until the events named by must (workspace/id) are visible
// and every workspace's latest checkpoint covers its visible events.
func (s *stack) sealed(workspaces []string, within time.Duration, must ...string) map[string]int {
	var visible map[string]int
	require.Eventually(s.t, func() bool {
		visible = stacktest.VisibleIDs(s.t, s.conn, s.db)
		for _, k := range must {
			if visible[k] == 0 {
				return false
			}
		}
		for _, ws := range workspaces {
			want := 0
			for k := range visible {
				if len(k) > len(ws) && k[:len(ws)+1] == ws+"/" {
					want++
				}
			}
			if size, _ := s.latest(ws); want == 0 || int(size) != want {
				s.t.Logf("%s: %d visible, %d leaves, latest checkpoint of size %d", ws, want, len(s.leaves(ws)), size)
				return false
			}
		}
		return true
	}, within, 200*time.Millisecond)
	return visible
}

func TestEveryStoredEventHasOneLeafUnderAVerifiedCheckpoint(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	defer s.writer()()
	defer s.sealer(nil)()
	workspaces := []string{"ws_a", "ws_b", "ws_c"}
	s.traffic(workspaces, 200, "one")
	visible := s.sealed(workspaces, 60*time.Second)
	require.Equal(t, 1, visible["ws_a/one-backdated"])
	require.Zero(t, visible["ws_a/one-expired"])
	for _, ws := range workspaces {
		s.checkLog(ws, visible)
	}

	// Later resends of sealed events, old and new, get no second leaf.
	before := len(s.leaves("ws_a"))
	s.send(record(t, s.events, "ws_a", "one-backdated", time.Now().UTC().Add(-time.Minute-10*24*time.Hour)))
	firsts := s.traffic([]string{"ws_a"}, 1, "two")
	s.send(&kgo.Record{Topic: firsts[0].Topic, Key: firsts[0].Key, Value: firsts[0].Value})
	visible = s.sealed([]string{"ws_a"}, 30*time.Second, "ws_a/two-ws_a-0", "ws_a/two-backdated")
	require.Equal(t, before+2, len(s.leaves("ws_a")), "two-ws_a-0 and two-backdated, nothing else")
	s.checkLog("ws_a", visible)

	// The fence's size reads, with external data on 18.16.
	n := int64(len(s.leaves("ws_b")))
	sizes, err := sealer.NewClickHouseStore(s.conn, s.db).Sizes(context.Background(), map[string]int64{"ws_b": n, "ws_c": n - 1, "ws_none": 0})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"ws_b": n, "ws_c": -1, "ws_none": 0}, sizes)

	// The checkpoints are published, the latest per workspace last.
	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.ConsumeTopics(s.cps), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	published := map[string]string{}
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { published[string(r.Key)] = string(r.Value) })
		for _, ws := range workspaces {
			if _, text := s.latest(ws); published[ws] != text {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond)
}

// crashingStore stops (as a killed process would) in the middle of the
// crashAt-th Append: after the stored hashes and part of the leaves.
type crashingStore struct {
	*sealer.ClickHouseStore
	crashAt int32
	calls   atomic.Int32
	crashed chan struct{}
}

func (c *crashingStore) Append(ctx context.Context, hashes []migrations.StoredHash, leaves []migrations.Leaf) error {
	if c.calls.Add(1) != c.crashAt {
		return c.ClickHouseStore.Append(ctx, hashes, leaves)
	}
	if err := c.ClickHouseStore.Append(ctx, hashes, leaves[:len(leaves)/2]); err != nil {
		return err
	}
	close(c.crashed)
	return fmt.Errorf("killed after the stored hashes and %d of %d leaves", len(leaves)/2, len(leaves))
}

func TestASealerKilledBetweenItsInsertsIsReplacedWithoutGapOrDoubleIndex(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	defer s.writer()()
	workspaces := []string{"ws_a", "ws_b"}
	crash := &crashingStore{ClickHouseStore: sealer.NewClickHouseStore(s.conn, s.db), crashAt: 3, crashed: make(chan struct{})}
	stop := s.sealer(crash)
	s.traffic(workspaces, 300, "one")
	select {
	case <-crash.crashed:
	case <-time.After(60 * time.Second):
		t.Fatal("the sealer did not reach its third append")
	}
	stop()
	defer s.sealer(nil)()
	visible := s.sealed(workspaces, 60*time.Second)
	for _, ws := range workspaces {
		s.checkLog(ws, visible)
	}
}

// TestNothingIsSealedBeforeTheWriterCommitted: with the writer stopped,
// the sealer reads the records and holds them; it seals them once the
// writer group stored and committed them.
func TestNothingIsSealedBeforeTheWriterCommitted(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	reg := prometheus.NewRegistry()
	defer s.sealerWith(nil, reg, nil)()
	s.traffic([]string{"ws_a"}, 50, "one")
	require.Eventually(t, func() bool { return gauge(t, reg, "audittrail_sealer_records_waiting") >= 50 },
		30*time.Second, 20*time.Millisecond, "the sealer read the records")
	require.Empty(t, s.leaves("ws_a"), "nothing sealed: the writer stored nothing yet")
	defer s.writer()()
	visible := s.sealed([]string{"ws_a"}, 60*time.Second)
	s.checkLog("ws_a", visible)
}

// gauge is the value of the gauge name in reg (-1 when absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// A sealer yields to a writer that lags behind the records it read, and
// seals everything once the writer caught up, each event once.
func TestASealerYieldsToALaggingWriterAndThenSealsEverything(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	reg := prometheus.NewRegistry()
	defer s.sealerWith(nil, reg, func(c *sealer.Config) { c.YieldLag, c.YieldEvery = 20, 2*time.Second })()
	stopWriter := s.writer()
	s.traffic([]string{"ws_a", "ws_b"}, 40, "one")
	s.sealed([]string{"ws_a", "ws_b"}, 60*time.Second)
	require.Zero(t, gauge(t, reg, "audittrail_sealer_yielding"), "the writer keeps up")

	// The writer stops; the sealer reads what keeps arriving, sees the
	// writer lag behind it and yields.
	stopWriter()
	s.traffic([]string{"ws_a", "ws_b"}, 40, "two")
	require.Eventually(t, func() bool { return gauge(t, reg, "audittrail_sealer_yielding") == 1 },
		30*time.Second, 20*time.Millisecond, "the sealer yields to the lagging writer")

	defer s.writer()()
	visible := s.sealed([]string{"ws_a", "ws_b"}, 60*time.Second)
	for _, ws := range []string{"ws_a", "ws_b"} {
		s.checkLog(ws, visible)
	}
	require.Eventually(t, func() bool { return gauge(t, reg, "audittrail_sealer_yielding") == 0 },
		30*time.Second, 20*time.Millisecond, "back to sealing every round")
}
