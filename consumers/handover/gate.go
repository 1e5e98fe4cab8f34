// Package handover makes a consumer wait, after a partition-count increase,
// until a moved workspace's records on its old partition are processed.
//
// Producers key records by workspace, so adding partitions to the events
// topic moves some workspaces to another partition. For a while their
// older records sit unread on the old partition while newer ones (and
// resends of older ones) arrive on the new partition, possibly read by
// another instance. A Gate sits between a consumer's poll and its
// processing: the first record of such a workspace on a partition holds
// that partition (its records are kept, in order, and its fetching paused)
// until the consumer groups named in Config.Groups have committed the old
// partition past the end it had when the record was read. Then the
// workspace's ids stored from the old partition are loaded, and the held
// records go on. So a resend whose first copy was on the old partition is
// recognised, and the workspace's records are processed in the order the
// producers switched partitions.
//
// Holds only wait on a partition the workspace was keyed to under an
// earlier count. When every increase multiplies the count (2 -> 4 -> 8),
// old partitions are always lower-numbered than the new one, so holds
// cannot wait on each other in a cycle. Any other increase can make two
// partitions wait on each other; Config.MaxHold then ends the wait.
package handover

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/consumers/idwindow"
)

// Window is how long after a partition-count increase is noticed its
// moves are handed over (see Older).
const Window = 24 * time.Hour

// DefaultMaxHold bounds one hold: a partition held longer goes on and the
// caller counts a timeout.
const DefaultMaxHold = 15 * time.Minute

// Offsets reads the offsets a Gate compares.
type Offsets interface {
	// Ends returns the high watermark of each of topic's partitions parts.
	Ends(ctx context.Context, topic string, parts []int32) (map[int32]int64, error)
	// Committed returns group's committed offset of each of topic's
	// partitions parts; a partition with none is absent.
	Committed(ctx context.Context, group, topic string, parts []int32) (map[int32]int64, error)
}

// Config tunes a Gate.
type Config struct {
	// Topic is the events topic.
	Topic string
	// Groups are the consumer groups whose commits on the old partition a
	// hold waits for (the writer waits for its own group; the forwarder
	// for its own and the writer's, whose id registry it reads).
	Groups []string
	// MaxHold bounds one hold (DefaultMaxHold when zero).
	MaxHold time.Duration
	// CheckEvery is the least time between two reads of the groups'
	// offsets while something is held (200ms when zero).
	CheckEvery time.Duration
}

// Load names ids a consumer must load before it processes released
// records: those stored from partition Partition by Workspaces (see
// idwindow.Registry.MovedFrom).
type Load struct {
	Partition  int32
	Workspaces []string
}

// Result is what one Pass decided.
type Result struct {
	// Ready are the records to process now, in offset order per partition.
	Ready []*kgo.Record
	// Pause and Resume are the partitions whose fetching the caller pauses
	// and resumes.
	Pause, Resume []int32
	// Loads come before Ready is processed.
	Loads []Load
	// TimedOut are the partitions released by MaxHold.
	TimedOut []int32
}

// Gate holds moved workspaces' records. It is safe for concurrent use
// (Pass runs in the poll loop, Assign and Revoke in rebalance callbacks).
type Gate struct {
	cfg Config
	off Offsets
	now func() time.Time

	mu        sync.Mutex
	current   int
	older     []int
	cleared   map[int32]map[string]bool // per assigned partition
	held      map[int32]*hold
	gaveUp    map[int32]bool // old partitions a hold timed out on, until the next Assign
	lastCheck time.Time
	lastErr   time.Time // when Pass last returned an error
	// Counted for the metrics, which read them without the lock (Pass
	// holds it while it reads offsets).
	holds, timeouts, heldRecords atomic.Int64
}

// hold is one held partition.
type hold struct {
	recs  []*kgo.Record
	since time.Time
	// waits maps an old partition to the offset the groups' commits must
	// reach; pending old partitions still need their end read.
	waits   map[int32]int64
	pending map[int32]bool
	// moved maps each moved workspace in recs to its old partitions.
	moved map[string][]int32
}

// New returns a Gate that holds nothing until Assign gives it earlier
// partition counts.
func New(cfg Config, off Offsets, now func() time.Time) *Gate {
	if cfg.MaxHold <= 0 {
		cfg.MaxHold = DefaultMaxHold
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 200 * time.Millisecond
	}
	return &Gate{cfg: cfg, off: off, now: now, cleared: map[int32]map[string]bool{}, held: map[int32]*hold{}, gaveUp: map[int32]bool{}}
}

// Assign starts an assignment of parts, the topic now having current
// partitions and the earlier counts older (see Older). A current of 0
// (the counts could not be read) keeps the counts known before.
func (g *Gate) Assign(parts []int32, current int, older []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if current > 0 {
		g.current, g.older = current, slices.Clone(older)
	}
	clear(g.gaveUp)
	for _, p := range parts {
		g.cleared[p] = map[string]bool{}
	}
}

// Revoke forgets parts: their held records are dropped (they were not
// processed, so nothing of them is committed and their next owner reads
// them again). It returns the held partitions among parts, whose fetching
// the caller resumes so that a later assignment does not start paused.
func (g *Gate) Revoke(parts []int32) (resume []int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range parts {
		if h := g.held[p]; h != nil {
			resume = append(resume, p)
			g.heldRecords.Add(-int64(len(h.recs)))
		}
		delete(g.held, p)
		delete(g.cleared, p)
	}
	return resume
}

// Holding reports whether a partition is held: the caller then polls with
// a short timeout, so that Pass runs while no record arrives.
func (g *Gate) Holding() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.held) > 0
}

// Held returns how many records are held.
func (g *Gate) Held() int { return int(g.heldRecords.Load()) }

// Collectors returns the gate's metrics, named prefix_handover_*.
func (g *Gate) Collectors(prefix string) []prometheus.Collector {
	read := func(n *atomic.Int64) func() float64 { return func() float64 { return float64(n.Load()) } }
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: prefix + "_handover_holds_total",
			Help: "Partitions held after a partition-count increase until a moved workspace's old partition was processed."},
			read(&g.holds)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: prefix + "_handover_timeouts_total",
			Help: "Holds ended by their time limit before the old partition was processed (see docs/partitioning.md)."},
			read(&g.timeouts)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: prefix + "_handover_held_records",
			Help: "Records held now."},
			read(&g.heldRecords)),
	}
}

// HoldPoll bounds a poll while the gate holds a partition, so that a
// release does not wait for new records.
const HoldPoll = 100 * time.Millisecond

// Poll polls cl for at most max records (waiting at most HoldPoll while a
// partition is held) and passes them through the gate (see Pass). The
// fetches' errors are the caller's to report; a poll cut short by
// HoldPoll shows as context.DeadlineExceeded.
func (g *Gate) Poll(ctx context.Context, cl *kgo.Client, max int) (kgo.Fetches, Result, error) {
	pctx := ctx
	if g.Holding() {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, HoldPoll)
		defer cancel()
	}
	fetches := cl.PollRecords(pctx, max)
	res, err := g.Pass(ctx, fetches.Records())
	return fetches, res, err
}

// offsetsTimeout bounds one read of offsets: Pass runs while a rebalance
// waits, and a metrics scrape waits for the gate's lock.
const offsetsTimeout = 5 * time.Second

// errorEvery is how often at most Pass returns an error while reads fail.
const errorEvery = 10 * time.Second

// Pass takes a poll's records (recs may be empty) and returns what to do
// with them and with the records held before. Errors reading offsets keep
// the holds; the next Pass tries again, and an error is returned at most
// every errorEvery. Cancelling ctx aborts the reads.
func (g *Gate) Pass(ctx context.Context, recs []*kgo.Record) (Result, error) {
	res, err := g.pass(ctx, recs)
	if err != nil {
		g.mu.Lock()
		defer g.mu.Unlock()
		if now := g.now(); now.Sub(g.lastErr) >= errorEvery {
			g.lastErr = now
			return res, err
		}
		return res, nil
	}
	return res, nil
}

func (g *Gate) pass(ctx context.Context, recs []*kgo.Record) (Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var res Result
	if len(g.older) == 0 && len(g.held) == 0 {
		res.Ready = recs // no increase to hand over
		return res, nil
	}
	for _, r := range recs {
		g.admit(r, &res)
	}
	if len(g.held) == 0 {
		return res, nil
	}
	err := g.capture(ctx)
	now := g.now()
	if err == nil && len(res.Pause) == 0 && now.Sub(g.lastCheck) < g.cfg.CheckEvery {
		return res, nil // a new hold is checked at once (it may pass already)
	}
	committed, cerr := g.committed(ctx)
	g.lastCheck = now
	for _, p := range slices.Sorted(maps.Keys(g.held)) {
		h := g.held[p]
		timedOut := now.Sub(h.since) >= g.cfg.MaxHold
		if !timedOut && (cerr != nil || !h.passed(committed, len(g.cfg.Groups))) {
			continue
		}
		g.release(p, h, &res)
		if timedOut {
			g.timeouts.Add(1)
			res.TimedOut = append(res.TimedOut, p)
			for q := range h.waits {
				g.gaveUp[q] = true // no new hold waits on q until the next assignment
			}
		}
	}
	res.Pause, res.Resume = netted(res.Pause, res.Resume)
	if err == nil {
		err = cerr
	}
	return res, err
}

// admit routes one record: to Ready, or into its partition's hold.
func (g *Gate) admit(r *kgo.Record, res *Result) {
	p := r.Partition
	cleared := g.cleared[p]
	if cleared == nil { // records of a partition Assign did not name
		cleared = map[string]bool{}
		g.cleared[p] = cleared
	}
	h := g.held[p]
	if h == nil && cleared[string(r.Key)] { // no copy of the key made here
		res.Ready = append(res.Ready, r)
		return
	}
	ws := string(r.Key)
	var olds []int32
	if !cleared[ws] && (h == nil || h.moved[ws] == nil) {
		olds = g.oldHomes(ws, p)
		if len(olds) == 0 {
			cleared[ws] = true
		}
	}
	switch {
	case h == nil && len(olds) == 0:
		res.Ready = append(res.Ready, r)
		return
	case h == nil:
		h = &hold{since: g.now(), waits: map[int32]int64{}, pending: map[int32]bool{}, moved: map[string][]int32{}}
		g.held[p] = h
		g.holds.Add(1)
		res.Pause = append(res.Pause, p)
	}
	h.recs = append(h.recs, r)
	g.heldRecords.Add(1)
	if len(olds) > 0 {
		h.moved[ws] = olds
		for _, q := range olds {
			h.pending[q] = true // a newer end covers this workspace's records too
		}
	}
}

// oldHomes returns the partitions other than p that the earlier counts key
// ws to, or nil when ws is not keyed to p now (its record on p was produced
// under an earlier count and is processed as it comes).
func (g *Gate) oldHomes(ws string, p int32) []int32 {
	if len(g.older) == 0 || g.current == 0 || idwindow.PartitionOf(ws, g.current) != p {
		return nil
	}
	var out []int32
	for _, n := range g.older {
		if q := idwindow.PartitionOf(ws, n); q != p && !g.gaveUp[q] && !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out
}

// capture reads the ends of the old partitions holds still need them for.
func (g *Gate) capture(ctx context.Context) error {
	var need []int32
	for _, h := range g.held {
		for q := range h.pending {
			if !slices.Contains(need, q) {
				need = append(need, q)
			}
		}
	}
	if len(need) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, offsetsTimeout)
	defer cancel()
	ends, err := g.off.Ends(ctx, g.cfg.Topic, need)
	if err != nil {
		return err
	}
	for _, h := range g.held {
		for q := range h.pending {
			if end, ok := ends[q]; ok {
				h.waits[q] = max(h.waits[q], end)
				delete(h.pending, q)
			}
		}
	}
	return nil
}

// committed reads every group's committed offsets of the old partitions
// the holds wait on: committed[i][q] is group i's.
func (g *Gate) committed(ctx context.Context) ([]map[int32]int64, error) {
	var parts []int32
	for _, h := range g.held {
		for q := range h.waits {
			if !slices.Contains(parts, q) {
				parts = append(parts, q)
			}
		}
	}
	out := make([]map[int32]int64, len(g.cfg.Groups))
	if len(parts) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, offsetsTimeout)
	defer cancel()
	for i, group := range g.cfg.Groups {
		c, err := g.off.Committed(ctx, group, g.cfg.Topic, parts)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// passed reports whether every group committed every old partition of h
// up to its end.
func (h *hold) passed(committed []map[int32]int64, groups int) bool {
	if len(h.pending) > 0 || len(committed) < groups {
		return false
	}
	for q, end := range h.waits {
		if end <= 0 {
			continue // nothing was ever there
		}
		for _, c := range committed {
			if off, ok := c[q]; !ok || off < end {
				return false
			}
		}
	}
	return true
}

// release ends p's hold: its records become ready after the loads of its
// moved workspaces' ids.
func (g *Gate) release(p int32, h *hold, res *Result) {
	delete(g.held, p)
	g.heldRecords.Add(-int64(len(h.recs)))
	res.Ready = append(res.Ready, h.recs...)
	res.Resume = append(res.Resume, p)
	cleared := g.cleared[p]
	for _, ws := range slices.Sorted(maps.Keys(h.moved)) {
		cleared[ws] = true
		for _, q := range h.moved[ws] {
			i := slices.IndexFunc(res.Loads, func(l Load) bool { return l.Partition == q })
			if i < 0 {
				res.Loads = append(res.Loads, Load{Partition: q})
				i = len(res.Loads) - 1
			}
			if !slices.Contains(res.Loads[i].Workspaces, ws) {
				res.Loads[i].Workspaces = append(res.Loads[i].Workspaces, ws)
			}
		}
	}
}

// netted drops the partitions both paused and resumed within one Pass.
func netted(pause, resume []int32) ([]int32, []int32) {
	var p, r []int32
	for _, x := range pause {
		if !slices.Contains(resume, x) {
			p = append(p, x)
		}
	}
	for _, x := range resume {
		if !slices.Contains(pause, x) {
			r = append(r, x)
		}
	}
	return p, r
}
