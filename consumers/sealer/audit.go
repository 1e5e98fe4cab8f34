package sealer

// The background audit: the live sample (sample.go) sees a row changed
// before its round is sealed; a row changed later, under a leaf sealed
// long ago, would be found only by `verify online`. So every AuditEvery
// the sealer reads back a few leaves chosen at random among all the
// leaves of the logs it holds in memory (crypto/rand-seeded, weighted by
// log size: every leaf alike), with their level-0 stored hashes and
// their events' stored rows, and checks that they still agree. A leaf
// whose stored parts exist and disagree is counted and logged (the
// AuditTrailStoredRowMismatch alert); nothing else changes.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// LeafAt names a leaf: its workspace and index.
type LeafAt struct {
	WorkspaceID string
	Index       int64
}

// StoredLeaf is what is stored of a leaf.
type StoredLeaf struct {
	// Rows are the distinct rows of audit_log_leaves at the index
	// (unmerged equal copies collapsed: more than one is a fork or a
	// forgery).
	Rows []migrations.Leaf
	// Hash is the leaf's level-0 stored hash (the tree's), "" when none;
	// Forked is whether the index has more than one distinct stored hash.
	Hash   string
	Forked bool
}

// leafAuditor is what the audit needs of the store beyond Store
// (ClickHouseStore has it).
type leafAuditor interface {
	// LeavesAt returns what is stored of each leaf that has a row or a
	// level-0 stored hash.
	LeavesAt(ctx context.Context, at []LeafAt) (map[LeafAt]StoredLeaf, error)
}

// Audited is what one audit pass found.
type Audited struct {
	// Results counts the leaves by result (sampleMatch, sampleAltered,
	// sampleAbsent).
	Results map[string]int
	// Altered are the leaves whose stored parts disagree, with why.
	Altered []AlteredLeaf
}

// AlteredLeaf is a leaf the audit found altered.
type AlteredLeaf struct {
	At  LeafAt
	ID  string
	Why string
}

// pickLeaves returns min(n, leaves) distinct leaves chosen uniformly
// among all the leaves of trees (each log weighted by its size).
func (p *sampler) pickLeaves(trees map[string]*tree) []LeafAt {
	wss := slices.Sorted(maps.Keys(trees))
	ends := make([]int64, 0, len(wss)) // cumulative sizes
	var total int64
	for _, ws := range wss {
		total += trees[ws].size
		ends = append(ends, total)
	}
	var picked []int64
	k := min(int64(p.n), total)
	if total <= 4*int64(p.n) { // few leaves: a partial shuffle of them all
		all := make([]int, total)
		for i := range all {
			all[i] = i
		}
		for _, x := range p.pick(all) {
			picked = append(picked, int64(x))
		}
	} else { // many: draw until k distinct (fewer than 4k/3 draws expected)
		seen := make(map[int64]bool, k)
		for int64(len(picked)) < k {
			if r := p.rnd.Int64N(total); !seen[r] {
				seen[r] = true
				picked = append(picked, r)
			}
		}
	}
	out := make([]LeafAt, len(picked))
	for j, r := range picked {
		i := sort.Search(len(ends), func(i int) bool { return ends[i] > r })
		out[j] = LeafAt{wss[i], r - (ends[i] - trees[wss[i]].size)}
	}
	return out
}

// heldTree is a log's size and root as the sealer held them when an audit
// pass was picked: what a leaf's inclusion proof is checked against.
type heldTree struct {
	size int64
	root tlog.Hash
}

// auditLeaves checks the leaves at (off the sealer's loop); a leaf whose
// stored parts agree is also proven included, from the stored hashes, in
// the tree the sealer holds (held, by workspace): a log rewritten
// consistently (event, leaf row and stored hash) does not give that
// root. A read that fails is returned (nothing is counted).
func auditLeaves(ctx context.Context, store Store, at []LeafAt, held map[string]heldTree) (Audited, error) {
	out := Audited{Results: map[string]int{}}
	la, ok := store.(leafAuditor)
	if !ok || len(at) == 0 {
		return out, nil
	}
	stored, err := la.LeavesAt(ctx, at)
	if err != nil {
		return out, err
	}
	var keys []Key
	for _, a := range at {
		if sl := stored[a]; len(sl.Rows) == 1 {
			keys = append(keys, Key{a.WorkspaceID, sl.Rows[0].TimestampNs, sl.Rows[0].ID})
		}
	}
	rows, err := storedCopies(ctx, store, keys)
	if err != nil {
		return out, err
	}
	for _, a := range at {
		sl := stored[a]
		var copies []migrations.Row
		if len(sl.Rows) == 1 {
			copies = rows[Key{a.WorkspaceID, sl.Rows[0].TimestampNs, sl.Rows[0].ID}]
		}
		result, why := auditLeaf(sl, copies)
		if h, ok := held[a.WorkspaceID]; ok && result == sampleMatch {
			included, err := provenIn(ctx, store, a, tlog.Hash([]byte(sl.Hash)), h)
			if err != nil {
				return out, err
			}
			if !included {
				result, why = sampleAltered, "the leaf is not in the tree the sealer holds (its stored hashes were changed)"
			}
		}
		out.Results[result]++
		if result == sampleAltered {
			var ids []string
			for _, r := range sl.Rows {
				ids = append(ids, r.ID)
			}
			out.Altered = append(out.Altered, AlteredLeaf{At: a, ID: strings.Join(ids, ","), Why: why})
		}
	}
	return out, nil
}

// provenIn reports whether leaf a, of hash h, is in the tree held: its
// inclusion proof read from the stored hashes gives held's root.
func provenIn(ctx context.Context, store Store, a LeafAt, h tlog.Hash, held heldTree) (bool, error) {
	if a.Index >= held.size {
		return false, nil
	}
	proof, err := tlog.ProveRecord(held.size, a.Index, store.ReadHashes(ctx, a.WorkspaceID))
	if err != nil {
		return false, fmt.Errorf("read the inclusion proof of leaf %d of %s: %w", a.Index, a.WorkspaceID, err)
	}
	return tlog.CheckRecord(proof, held.size, held.root, a.Index, h) == nil, nil
}

// auditLeaf decides a leaf from what is stored of it and its event's
// stored copies (none when not visible): altered only when parts that
// exist disagree (any copy: a read may serve any unmerged one). A leaf without a row or a stored hash, or whose event is not
// visible (expired, dropped by retention, moved to the kept tables, a
// replica behind) is absent: not evidence of a change.
func auditLeaf(sl StoredLeaf, copies []migrations.Row) (result, why string) {
	switch {
	case len(sl.Rows) > 1:
		return sampleAltered, "two leaf rows at one index"
	case sl.Forked:
		return sampleAltered, "two stored hashes at one index"
	case len(sl.Rows) == 0 || sl.Hash == "":
		return sampleAbsent, ""
	case sl.Rows[0].Hash != sl.Hash:
		return sampleAltered, "the leaf row's hash is not the tree's"
	case len(copies) == 0:
		return sampleAbsent, ""
	}
	for i := range copies {
		if h := leaf.Hash(&copies[i]); string(h[:]) != sl.Hash {
			return sampleAltered, "the stored event does not hash to its leaf"
		}
	}
	return sampleMatch, ""
}

// auditLogs picks an audit pass's leaves when one is due and the audit's
// worker is free, and hands it their check, which counts and logs what
// it found.
func (s *Sealer) auditLogs() {
	now := s.now()
	if s.auditor == nil || now.Sub(s.audited) < s.cfg.AuditEvery || !s.checks.auditFree() {
		return // not due, or the last pass still waits: this one comes when it is taken
	}
	s.audited = now
	at := s.auditor.pickLeaves(s.seq.trees)
	if len(at) == 0 {
		return
	}
	held := map[string]heldTree{}
	for _, a := range at {
		t := s.seq.trees[a.WorkspaceID]
		if root, err := t.root(); err == nil {
			held[a.WorkspaceID] = heldTree{t.size, root}
		}
	}
	s.checks.audits <- func(ctx context.Context) { s.reportAudit(ctx, at, held) } // free: only the loop sends
}

// reportAudit checks the leaves at against the trees held, counts and
// logs what it found.
func (s *Sealer) reportAudit(ctx context.Context, at []LeafAt, held map[string]heldTree) {
	actx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	a, err := auditLeaves(actx, s.store, at, held)
	if err != nil {
		if ctx.Err() == nil {
			s.m.errors.WithLabelValues("audit").Inc()
			s.log.Warn("the audit of sealed leaves could not read them; the next pass tries others", "err", err)
		}
		return
	}
	for r, n := range a.Results {
		s.m.audited.WithLabelValues(r).Add(float64(n))
	}
	for _, l := range a.Altered {
		s.log.Error("an audited leaf's stored parts disagree (was the event or the log changed in ClickHouse?)",
			slog.String("workspace", l.At.WorkspaceID), slog.Int64("leaf_index", l.At.Index), slog.String("id", l.ID),
			slog.String("why", l.Why))
	}
}
