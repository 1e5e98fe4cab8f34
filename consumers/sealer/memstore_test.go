package sealer

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// memStore is a Store in memory, with the same rules as ClickHouseStore;
// failAppend, when set, decides per call whether Append stops after the
// hashes (a crash between the two inserts) or before anything.
type memStore struct {
	mu     sync.Mutex
	rows   map[Key]migrations.Row
	hashes map[string]map[int64]migrations.StoredHash
	leaves map[string]map[uint64]migrations.Leaf
	// failAppend returns "before", "between" or "" (no failure).
	failAppend  func() string
	appends     int
	checkpoints []migrations.Checkpoint
	tileTimes   []migrations.TileNote
	tileNewest  []migrations.TileNote
	// offsets are the offsets record's rows, in the order recorded;
	// rowsRead counts the keys Rows was asked for (the read-back).
	offsets  []migrations.StoredOffset
	rowsRead int
	// hasLeaves counts HasLeaves calls (reads of a workspace's leaf ids).
	hasLeaves int
	// audits counts the leaves LeavesAt was asked for.
	audits int
	// kept holds the long-term tables (memkept_test.go).
	kept memKept
}

var errCrash = errors.New("crash")

func newMemStore() *memStore {
	return &memStore{rows: map[Key]migrations.Row{}, hashes: map[string]map[int64]migrations.StoredHash{}, leaves: map[string]map[uint64]migrations.Leaf{}}
}

func (m *memStore) store(r migrations.Row) Key {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := Key{r.WorkspaceID, r.TimestampNs, r.ID}
	m.rows[k] = r
	return k
}

// record adds rows to the offsets record, as the writer does.
func (m *memStore) record(os ...migrations.StoredOffset) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offsets = append(m.offsets, os...)
}

// Offsets follows ClickHouseStore.Offsets: of an offset's rows, the last
// recorded stored one, else the last recorded.
func (m *memStore) Offsets(_ context.Context, spans []Span) (map[At]migrations.StoredOffset, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[At]migrations.StoredOffset{}
	for _, o := range m.offsets {
		for _, sp := range spans {
			if o.Topic != sp.Topic || o.Partition != sp.Part || o.Offset < sp.From || o.Offset > sp.To {
				continue
			}
			a := At{o.Topic, o.Partition, o.Offset}
			if prev, ok := out[a]; ok && prev.Outcome == migrations.OutcomeStored && o.Outcome != migrations.OutcomeStored {
				continue
			}
			out[a] = o
		}
	}
	return out, nil
}

func (m *memStore) Rows(_ context.Context, keys []Key) (map[Key]migrations.Row, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rowsRead += len(keys)
	out := map[Key]migrations.Row{}
	for _, k := range keys {
		if r, ok := m.rows[k]; ok {
			out[k] = r
		}
	}
	return out, nil
}

func (m *memStore) Load(_ context.Context, wss []string, seenFrom int64, maxSeen, recent int) (map[string]State, error) {
	out := map[string]State{}
	for _, ws := range wss {
		st, err := m.load(ws, seenFrom, maxSeen, recent)
		if err != nil {
			return nil, err
		}
		out[ws] = st
	}
	return out, nil
}

func (m *memStore) load(ws string, seenFrom int64, maxSeen, recent int) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	count := int64(0)
	for x := range m.hashes[ws] {
		count = max(count, x+1)
	}
	size, err := SizeOf(count)
	if err != nil {
		return State{}, err
	}
	st := State{Size: size, Edge: map[int64]tlog.Hash{}, SeenFrom: seenFrom}
	for _, x := range edgeIndexes(size) {
		h := m.hashes[ws][x]
		st.Edge[x] = tlog.Hash([]byte(h.Hash))
	}
	levelZero := map[int64]tlog.Hash{}
	for x, h := range m.hashes[ws] {
		if h.Level == 0 {
			levelZero[x] = tlog.Hash([]byte(h.Hash))
		}
	}
	withLeaf := map[int64]bool{}
	for i, l := range m.leaves[ws] {
		withLeaf[int64(i)] = true
		if l.TimestampNs >= seenFrom && len(st.Seen) < maxSeen {
			st.Seen = append(st.Seen, Key{ws, l.TimestampNs, l.ID})
		}
	}
	st.Orphans = Orphans(size-int64(recent), size, levelZero, withLeaf)
	for _, cp := range m.checkpoints {
		if cp.WorkspaceID == ws && int64(cp.Size) >= st.Signed {
			st.Signed, st.SignedAt, st.Note = int64(cp.Size), cp.SignedAt, cp.Note
		}
	}
	top := int64(-1)
	for _, n := range m.tileNewest {
		if n.WorkspaceID == ws {
			top = max(top, int64(n.Tile))
		}
	}
	st.Noted = size >> 8 // as ClickHouseStore: a log without notes starts at its complete tiles
	if top >= 0 {
		st.Noted = top + 1
	}
	return st, nil
}

// LeafTimes authenticates as ClickHouseStore does.
func (m *memStore) LeafTimes(_ context.Context, ws string, indexes []int64) (map[int64]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int64]int64{}
	for _, i := range indexes {
		l, ok := m.leaves[ws][uint64(i)]
		h, stored := m.hashes[ws][storedLeaf(i)]
		r, found := m.rows[Key{ws, l.TimestampNs, l.ID}]
		if lh := leaf.Hash(&r); ok && stored && found && h.Hash == l.Hash && string(lh[:]) == l.Hash {
			out[i] = l.TimestampNs / 1e9
		}
	}
	return out, nil
}

func (m *memStore) SaveTileNotes(_ context.Context, times, newest []migrations.TileNote) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tileTimes = append(m.tileTimes, times...)
	m.tileNewest = append(m.tileNewest, newest...)
	return nil
}

func (m *memStore) HasLeaves(_ context.Context, ws string, keys []Key) (map[Key]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hasLeaves++
	ids := map[string]bool{}
	for _, l := range m.leaves[ws] {
		ids[l.ID] = true
	}
	out := map[Key]bool{}
	for _, k := range keys {
		if ids[k.ID] {
			out[k] = true
		}
	}
	return out, nil
}

func (m *memStore) Sizes(_ context.Context, near map[string]int64) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int64{}
	for ws := range near {
		count := int64(0)
		for x := range m.hashes[ws] {
			count = max(count, x+1)
		}
		n, err := SizeOf(count)
		if err != nil {
			n = -1
		}
		out[ws] = n
	}
	return out, nil
}

func (m *memStore) ReadHashes(_ context.Context, ws string) tlog.HashReaderFunc {
	return m.hashReader(ws)
}

func (m *memStore) Append(_ context.Context, hashes []migrations.StoredHash, leaves []migrations.Leaf) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appends++
	fail := ""
	if m.failAppend != nil {
		fail = m.failAppend()
	}
	if fail == "before" {
		return errCrash
	}
	for _, h := range hashes {
		if m.hashes[h.WorkspaceID] == nil {
			m.hashes[h.WorkspaceID] = map[int64]migrations.StoredHash{}
		}
		m.hashes[h.WorkspaceID][int64(h.Index)] = h
	}
	if fail == "between" {
		// Part of the leaves made it: a crash in the middle of the insert.
		leaves = leaves[:len(leaves)/3]
	}
	for _, l := range leaves {
		if m.leaves[l.WorkspaceID] == nil {
			m.leaves[l.WorkspaceID] = map[uint64]migrations.Leaf{}
		}
		if old, ok := m.leaves[l.WorkspaceID][l.Index]; ok && (old.ID != l.ID || old.Hash != l.Hash) {
			panic("leaf index assigned twice")
		}
		m.leaves[l.WorkspaceID][l.Index] = l
	}
	if fail == "between" {
		return errCrash
	}
	return nil
}

func (m *memStore) SaveCheckpoints(_ context.Context, cps []migrations.Checkpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checkpoints = append(m.checkpoints, cps...)
	return nil
}

// hashReader reads a workspace's stored hashes.
func (m *memStore) hashReader(ws string) tlog.HashReaderFunc {
	return func(indexes []int64) ([]tlog.Hash, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			h, ok := m.hashes[ws][x]
			if !ok {
				return nil, errors.New("missing stored hash")
			}
			out[i] = tlog.Hash([]byte(h.Hash))
		}
		return out, nil
	}
}
