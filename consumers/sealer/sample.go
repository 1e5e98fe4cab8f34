package sealer

// The live tamper signal: a leaf is computed from its Kafka record, not
// from the stored row, so a row changed in ClickHouse after the writer
// stored it would otherwise be found only by `verify online`. Each round,
// a few of the round's new leaves, chosen at random, have their stored
// row read back by key (off the sealer's loop, checks.go) and compared
// with the leaf; a row that exists and differs is counted and logged (the
// AuditTrailStoredRowMismatch alert). The leaf is never changed and
// sealing never waits on the outcome: the record is the truth.

import (
	"context"
	crand "crypto/rand"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// sampleTimeout bounds a sample's or an audit pass's read: a read that
// fails is counted, not retried.
const sampleTimeout = 5 * time.Second

// Results of a sampled row (the rows_sampled counter's labels).
const (
	sampleMatch = "match" // the stored row hashes to its leaf
	// sampleAltered: the stored row (the copy the table's merges keep)
	// differs from its leaf other than by a later received_at: changed in
	// ClickHouse.
	sampleAltered = "altered"
	// sampleAbsent: no stored row is visible (a cluster replica behind, or
	// retention already dropped its day): not evidence of a change.
	sampleAbsent = "absent"
	// sampleLaterCopy: the kept copy is the same event received later (an
	// identical resend the writer stored again after its id window forgot
	// the id): a known gap, not an alteration (docs/integrity.md).
	sampleLaterCopy = "later_copy"
	// sampleSkipped: not read, left out while a sample read was running
	// (the reads fall behind the rounds; checks.go).
	sampleSkipped = "skipped"
	// sampleThinned: not read, left out of the leaves waiting for the
	// next read while the worker waited for its pace (checks.go).
	sampleThinned = "thinned"
)

// sampleResults are the rows_sampled counter's labels.
var sampleResults = []string{sampleMatch, sampleAltered, sampleAbsent, sampleLaterCopy, sampleSkipped, sampleThinned}

// Sampled is what one round's sample found.
type Sampled struct {
	// Results counts the sampled rows by result (sampleResults).
	Results map[string]int
	// Altered are the sampled leaves whose stored row differs.
	Altered []migrations.Leaf
	// Err is the sample read's error (the round is sealed all the same).
	Err error
}

// sampler picks the leaves whose rows are read back. It is owned by the
// sealer's loop.
type sampler struct {
	n int
	// rnd is a ChaCha8 stream seeded from crypto/rand: which rows are
	// checked cannot be predicted from what the sealer did before, so an
	// attacker cannot time a change to miss the sample.
	rnd *rand.Rand
}

// newSampler returns a sampler of n rows a round, nil when n is 0.
func newSampler(n int) *sampler {
	if n <= 0 {
		return nil
	}
	return &sampler{n: n, rnd: seededRand()}
}

// seededRand returns a ChaCha8 stream seeded from crypto/rand.
func seededRand() *rand.Rand {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (crypto/rand.Read's contract)
	return rand.New(rand.NewChaCha8(seed))
}

// pick returns min(n, len(from)) distinct elements of from, uniformly
// at random (a partial Fisher-Yates shuffle of a copy).
func (p *sampler) pick(from []int) []int {
	xs := append([]int(nil), from...)
	k := min(p.n, len(xs))
	for i := range k {
		j := i + p.rnd.IntN(len(xs)-i)
		xs[i], xs[j] = xs[j], xs[i]
	}
	return xs[:k]
}

// SampleCheck is a round's sample: the leaves chosen when the round was
// sealed and the records they were sealed from. Its rows are read later,
// off the sealer's loop (run).
type SampleCheck struct {
	leaves  []migrations.Leaf
	records []*migrations.Row
}

// sample picks a random few of the round's new leaves (leaves, in the
// order assigned) that were computed from their record (rows read back
// were compared already). It reads nothing.
func (s *sequencer) sample(leaves []migrations.Leaf, res resolved) SampleCheck {
	var c SampleCheck
	if s.sampler == nil {
		return c
	}
	var from []int
	for i := range leaves {
		if !res.readBack[leafEvent(&leaves[i])] {
			from = append(from, i)
		}
	}
	for _, i := range s.sampler.pick(from) {
		c.leaves = append(c.leaves, leaves[i])
		c.records = append(c.records, res.rows[leafEvent(&leaves[i])])
	}
	return c
}

// run reads back the sampled leaves' stored rows (one read by key,
// bounded by sampleTimeout) and compares each with its leaf. A failed
// read is in Sampled.Err (none when ctx was cancelled: the sealer is
// stopping).
func (c SampleCheck) run(ctx context.Context, store Store) Sampled {
	out := Sampled{Results: map[string]int{}}
	if len(c.leaves) == 0 {
		return out
	}
	keys := make([]Key, len(c.leaves))
	for i := range c.leaves {
		keys[i] = leafEvent(&c.leaves[i])
	}
	rctx, cancel := context.WithTimeout(ctx, sampleTimeout)
	defer cancel()
	stored, err := storedCopies(rctx, store, keys)
	if err != nil {
		if ctx.Err() == nil { // not a shutdown
			out.Err = err
		}
		return out
	}
	for i, l := range c.leaves {
		r := compareCopies(l.Hash, c.records[i], stored[keys[i]])
		out.Results[r]++
		if r == sampleAltered {
			out.Altered = append(out.Altered, l)
		}
	}
	return out
}

// copyReader reads every stored copy of keys (ClickHouseStore.Copies).
type copyReader interface {
	Copies(ctx context.Context, keys []Key) (map[Key][]migrations.Row, error)
}

// storedCopies returns every stored copy of keys: from Copies when the
// store has it, else the one copy Rows reads.
func storedCopies(ctx context.Context, store Store, keys []Key) (map[Key][]migrations.Row, error) {
	if cr, ok := store.(copyReader); ok {
		return cr.Copies(ctx, keys)
	}
	rows, err := store.Rows(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[Key][]migrations.Row, len(rows))
	for k, r := range rows {
		out[k] = []migrations.Row{r}
	}
	return out, nil
}

// compareCopies decides a sampled key from all its stored copies: absent
// without one, altered when any copy is altered (a read may serve any
// unmerged copy, and merges keep the last inserted part's, whatever its
// inserted_at), a later copy when one is, else a match.
func compareCopies(leafHash string, record *migrations.Row, copies []migrations.Row) string {
	if len(copies) == 0 {
		return sampleAbsent
	}
	result := sampleMatch
	for _, c := range copies {
		switch compareStored(leafHash, record, c, true) {
		case sampleAltered:
			return sampleAltered
		case sampleLaterCopy:
			result = sampleLaterCopy
		}
	}
	return result
}

// compareStored decides a sampled row: stored (present when ok) against
// the leaf hash sealed from record (nil: no later copy is recognised).
func compareStored(leafHash string, record *migrations.Row, stored migrations.Row, ok bool) string {
	if !ok {
		return sampleAbsent
	}
	h := leaf.Hash(&stored)
	switch {
	case string(h[:]) == leafHash:
		return sampleMatch
	case record != nil && stored.ReceivedAtNs > record.ReceivedAtNs && sameEvent(record, &stored, h):
		return sampleLaterCopy
	default:
		return sampleAltered
	}
}

// leafEvent is the key of the stored event a leaf names.
func leafEvent(l *migrations.Leaf) Key { return Key{l.WorkspaceID, l.TimestampNs, l.ID} }

// report counts a round's sample and logs each altered row.
func (s *Sealer) report(sm Sampled) {
	for r, n := range sm.Results {
		s.m.sampled.WithLabelValues(r).Add(float64(n))
	}
	if sm.Err != nil {
		s.m.errors.WithLabelValues("sample").Inc()
		s.log.Warn("the round's sample of stored rows not read; the round is sealed", "err", sm.Err)
	}
	for _, l := range sm.Altered {
		s.log.Error("a sampled stored row differs from the leaf sealed from its Kafka record (was the row changed in ClickHouse?)",
			slog.String("workspace", l.WorkspaceID), slog.String("id", l.ID), slog.Int64("timestamp_ns", l.TimestampNs),
			slog.Uint64("leaf_index", l.Index))
	}
}
