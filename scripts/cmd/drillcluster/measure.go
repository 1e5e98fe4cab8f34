package main

// The -measure mode: produce, consume and writer throughput on the
// cluster, the capacity figures.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/scripts/internal/drillkit"
)

// figure is one measured throughput: the median over the rounds, with
// the range.
type figure struct {
	Name       string    `json:"name"`
	Partitions int       `json:"partitions"`
	Writers    int       `json:"writers,omitempty"`
	Unit       string    `json:"unit"`
	Value      float64   `json:"value"` // median of the rounds
	Min        float64   `json:"min"`
	Max        float64   `json:"max"`
	Rounds     []float64 `json:"rounds"`
	PerUnit    float64   `json:"per_unit,omitempty"` // the median per partition or per writer instance
	PerUnitOf  string    `json:"per_unit_of,omitempty"`
}

// measurement is the -measure report; it is also written as JSON to
// scripts/bench-results/capacity.json.
type measurement struct {
	Date      string   `json:"date"`
	Machine   string   `json:"machine"`
	Cluster   string   `json:"cluster"`
	Events    int      `json:"events"`
	Rounds    int      `json:"rounds"`
	EventSize float64  `json:"event_bytes"`      // mean encoded contract JSON
	KafkaSize float64  `json:"kafka_bytes"`      // log bytes per event per replica (zstd batches)
	CHSize    float64  `json:"clickhouse_bytes"` // bytes on disk per stored row, after a merge
	Took      string   `json:"took"`
	Figures   []figure `json:"figures"`
}

func (m *measurement) print(w io.Writer) {
	fmt.Fprintf(w, "\nThroughput on the local cluster, %s, %s; %s.\n%d events per measurement, median of %d rounds (range in brackets); took %s.\n",
		m.Date, m.Machine, m.Cluster, m.Events, m.Rounds, m.Took)
	fmt.Fprintf(w, "Event: %.0f bytes of contract JSON; %.0f bytes per replica in Kafka (zstd); %.0f bytes per row on disk in ClickHouse.\n\n",
		m.EventSize, m.KafkaSize, m.CHSize)
	fmt.Fprintln(w, "| measurement | partitions | writers | throughput, median (range) | per partition / per writer instance |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, f := range m.Figures {
		ws := "-"
		if f.Writers > 0 {
			ws = fmt.Sprint(f.Writers)
		}
		per := "-"
		if f.PerUnit > 0 {
			per = fmt.Sprintf("%.0f %s per %s", f.PerUnit, f.Unit, f.PerUnitOf)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.0f %s (%.0f-%.0f) | %s |\n", f.Name, f.Partitions, ws, f.Value, f.Unit, f.Min, f.Max, per)
	}
}

// measure runs the capacity measurements on the cluster, o.rounds times:
// produce (replication factor 3, acks=all, as the emitter and the gateway
// produce) and consume on one partition and on six, and the writer binary
// storing the backlog into ClickHouse with one instance on one partition,
// one instance on six and three instances on six.
func measure(ctx context.Context, o options) (m *measurement, err error) {
	began := time.Now()
	cl := cluster{root: o.root}
	if err := cl.install(); err != nil {
		return nil, err
	}
	before := cl.running()
	dir, err := os.MkdirTemp("", "audittrail-measure-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var buildErr error
	var wg sync.WaitGroup
	wg.Go(func() { _, buildErr = proctest.Build(dir, "consumers/cmd/writer") })
	startErr := cl.start()
	wg.Wait()
	defer cl.stopStarted(before)
	if err := errors.Join(startErr, buildErr); err != nil {
		return nil, err
	}

	kcl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	defer kcl.Close()
	adm := kadm.NewClient(kcl)
	conn, err := chconn.Open(ctx, chconn.Config{Addr: "127.0.0.1:9000", Database: "default", Username: "default",
		DialTimeout: 2 * time.Second, ReadTimeout: time.Minute, MaxOpenConns: 4})
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	logf("generating %d events", o.events)
	events, values := generate(o.events)
	var size int
	for _, v := range values {
		size += len(v)
	}
	m = &measurement{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), Machine: machine(),
		Cluster: "Kafka 4.1 x3 on loopback (RF 3, min ISR 2, acks=all, zstd), ClickHouse 18.16 (shared), all on this machine",
		Events:  o.events, Rounds: o.rounds, EventSize: float64(size) / float64(len(values))}
	rounds := map[string]*figure{}
	var order []string
	record := func(f figure, v float64) {
		k := fmt.Sprintf("%s|%d|%d|%s", f.Name, f.Partitions, f.Writers, f.Unit)
		if rounds[k] == nil {
			rounds[k] = &f
			order = append(order, k)
		}
		rounds[k].Rounds = append(rounds[k].Rounds, v)
		logf("%s, %d partition(s), %d writer(s): %.0f %s", f.Name, f.Partitions, f.Writers, v, f.Unit)
	}
	for r := 1; r <= o.rounds; r++ {
		logf("round %d of %d", r, o.rounds)
		if err := measureRound(ctx, m, adm, conn, dir, events, values, r == 1, record); err != nil {
			return m, err
		}
	}
	for _, k := range order {
		m.Figures = append(m.Figures, summarise(*rounds[k]))
	}
	m.Took = time.Since(began).Round(time.Second).String()
	if err := writeJSON(filepath.Join(o.root, "scripts", "bench-results", "capacity.json"), m); err != nil {
		return m, err
	}
	return m, nil
}

// measureRound runs every measurement once, on topics and databases of its
// own that it removes at the end.
func measureRound(ctx context.Context, m *measurement, adm *kadm.Client, conn driver.Conn, dir string,
	events []event.Event, values [][]byte, sizes bool, record func(figure, float64)) error {
	sfx := fmt.Sprintf("%x", time.Now().UnixNano())
	var topicsMade, dbs []string
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if len(topicsMade) > 0 {
			_, _ = adm.DeleteTopics(cctx, topicsMade...)
		}
		for _, db := range dbs {
			_ = conn.Exec(cctx, "DROP DATABASE IF EXISTS "+db)
		}
	}()
	produce := figure{Name: "produce (emitter settings)", Unit: "events/s"}
	produceMB := figure{Name: "produce (emitter settings), contract JSON", Unit: "MB/s"}
	consume := figure{Name: "consume (plain franz-go)", Unit: "events/s"}
	store := figure{Name: "writer binary: Kafka -> ClickHouse", Unit: "events/s"}
	for _, parts := range []int{1, 6} {
		topic := fmt.Sprintf("measure-p%d-%s", parts, sfx)
		if err := createTopic(ctx, adm, topic, int32(parts), nil); err != nil {
			return err
		}
		topicsMade = append(topicsMade, topic, topic+"-dlq")
		rate, err := produceAll(ctx, topic, events, values)
		if err != nil {
			return err
		}
		produce.Partitions, produceMB.Partitions, consume.Partitions, store.Partitions = parts, parts, parts, parts
		record(produce, rate)
		record(produceMB, rate*m.EventSize/1e6)
		if sizes && parts == 6 {
			if b, err := topicBytes(ctx, adm, topic); err == nil {
				m.KafkaSize = float64(b) / 3 / float64(len(values))
			}
		}
		rate, err = drillkit.ConsumeRate(ctx, brokers, topic, len(events), "")
		if err != nil {
			return err
		}
		record(consume, rate)
		counts := []int{1}
		if parts > 1 {
			counts = []int{1, writers}
		}
		for _, n := range counts {
			db := fmt.Sprintf("measure_%s_p%d_w%d", sfx, parts, n)
			dbs = append(dbs, db)
			rate, err := writerRate(ctx, conn, filepath.Join(dir, "writer"), dir, topic, db, n, len(events))
			if err != nil {
				return err
			}
			store.Writers = n
			record(store, rate)
			if sizes && parts == 6 && n == 1 {
				if b, err := rowBytes(ctx, conn, db); err == nil {
					m.CHSize = b
				}
			}
		}
	}
	return nil
}

// summarise sets the median, the range and the per-unit share.
func summarise(f figure) figure {
	vs := slices.Clone(f.Rounds)
	slices.Sort(vs)
	f.Min, f.Max = vs[0], vs[len(vs)-1]
	f.Value = vs[len(vs)/2]
	if len(vs)%2 == 0 {
		f.Value = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	switch {
	case f.Writers > 0:
		f.PerUnit, f.PerUnitOf = f.Value/float64(f.Writers), "writer"
	case f.Partitions > 0:
		f.PerUnit, f.PerUnitOf = f.Value/float64(f.Partitions), "partition"
	}
	return f
}

// topicBytes sums the log size of topic over every replica.
func topicBytes(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return 0, err
	}
	var n int64
	all.Each(func(d kadm.DescribedLogDir) {
		for _, p := range d.Topics[topic] {
			n += p.Size
		}
	})
	return n, nil
}

// rowBytes merges the table and returns its bytes on disk per row.
func rowBytes(ctx context.Context, conn driver.Conn, db string) (float64, error) {
	if err := conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s.%s FINAL", db, migrations.Table)); err != nil {
		return 0, err
	}
	var bytes, rows uint64
	err := conn.QueryRow(ctx, "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE active AND database = ? AND table = ?",
		db, migrations.Table).Scan(&bytes, &rows)
	if err != nil || rows == 0 {
		return 0, fmt.Errorf("parts of %s: %w", db, err)
	}
	return float64(bytes) / float64(rows), nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s/%s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH)
}

// generate makes n realistic events (1,000 workspaces, Zipf-skewed, over
// the last three days) and their contract JSON.
func generate(n int) ([]event.Event, [][]byte) {
	g, _ := loadgen.New(loadgen.Config{Workspaces: 1000, ZipfS: 1.1, Spread: 72 * time.Hour, Seed: 42}, time.Now)
	events := make([]event.Event, n)
	values := make([][]byte, n)
	now := time.Now().UTC()
	for i := range events {
		e := g.Next()
		e.ReceivedAt = now
		events[i] = e
		values[i], _ = event.Marshal(&e)
	}
	return events, values
}

// produceAll produces every event with the emitter's producer settings and
// returns events/s.
func produceAll(ctx context.Context, topic string, events []event.Event, values [][]byte) (float64, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)},
		emitter.ProducerOptions(emitter.Config{Topic: topic, DeliveryTimeout: time.Minute})...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for i := range values {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(events[i].WorkspaceID), Value: values[i]}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				first = errors.Join(first, err)
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return float64(len(values)) / time.Since(start).Seconds(), nil
}

// writerRate runs n writer processes (one group, database db) over topic
// until they stored want rows, and returns the sustained events/s from the
// first stored rows to the last (the group join is not counted).
func writerRate(ctx context.Context, conn driver.Conn, bin, logDir, topic, db string, n, want int) (float64, error) {
	var ps []*proc
	defer func() {
		var wg sync.WaitGroup
		for _, p := range ps {
			wg.Go(func() { p.signal(syscall.SIGTERM) })
		}
		wg.Wait()
	}()
	for i := 1; i <= n; i++ {
		p := newProc(fmt.Sprintf("%s-writer-%d", db, i), bin, logDir, []string{
			"AUDITTRAIL_KAFKA_BROKERS=" + strings.Join(brokers, ","),
			"AUDITTRAIL_KAFKA_TOPIC=" + topic,
			"AUDITTRAIL_WRITER_DLQ_TOPIC=" + topic + "-dlq",
			"AUDITTRAIL_WRITER_GROUP=" + db,
			"AUDITTRAIL_CLICKHOUSE_ADDR=127.0.0.1:9000",
			"AUDITTRAIL_CLICKHOUSE_DATABASE=" + db,
			"AUDITTRAIL_WRITER_ADDR=" + proctest.AnyPort,
			fmt.Sprintf("AUDITTRAIL_WRITER_INSTANCE_ID=%s-%d", db, i),
		})
		if err := p.start(); err != nil {
			return 0, err
		}
		ps = append(ps, p)
		if i == 1 { // the first applies the schema
			if err := p.waitReady(ctx, 90*time.Second); err != nil {
				return 0, err
			}
		}
	}
	table := db + "." + migrations.Table
	deadline := time.Now().Add(10 * time.Minute)
	// The window starts once every instance owns partitions and rows are
	// being stored: the group join and the rebalances are not counted.
	balanced := func() bool {
		sum := 0
		for _, p := range ps {
			v, ok := p.metric(ctx, "audittrail_writer_assigned_partitions")
			if !ok || v < 1 {
				return false
			}
			sum += int(v)
		}
		return n == 1 || sum >= n
	}
	var firstAt time.Time
	var firstN uint64
	for {
		var c uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&c); err != nil && !firstAt.IsZero() {
			return 0, err
		}
		if c > 0 && firstAt.IsZero() && balanced() {
			firstAt, firstN = time.Now(), c
		}
		if int(c) >= want {
			if firstAt.IsZero() || int(firstN) >= want || time.Since(firstAt) <= 0 {
				return 0, errors.New("the backlog was stored before the writers were balanced: measure with more -events")
			}
			if float64(firstN) > 0.5*float64(want) {
				logf("warning: %d of %d rows were stored before the window opened", firstN, want)
			}
			return float64(uint64(want)-firstN) / time.Since(firstAt).Seconds(), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("writers stored %d of %d in 10 minutes", c, want)
		}
		if err := sleepUntil(ctx, time.Now().Add(100*time.Millisecond)); err != nil {
			return 0, err
		}
	}
}
