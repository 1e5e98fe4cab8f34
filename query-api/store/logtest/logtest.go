// Package logtest builds integrity logs in memory for tests: leaves,
// stored hashes (tlog numbering) and checkpoints signed with a fresh
// Ed25519 note key. A Log serves them as the API's log reader does, and
// can write them into the log tables of a ClickHouse database.
package logtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/tilenote"
)

// Key is a note signing key and its verifier key.
type Key struct {
	Signer   note.Signer
	Verifier string
}

// NewKey returns a fresh Ed25519 note key named name.
func NewKey(name string) (Key, error) {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return Key{}, err
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return Key{}, err
	}
	return Key{Signer: s, Verifier: vkey}, nil
}

// Log is one workspace's log. It is safe for concurrent use.
type Log struct {
	WorkspaceID string
	Origin      string // the origin prefix; lines are Origin/WorkspaceID
	mu          sync.Mutex
	leaves      []store.Leaf
	size        int64
	hashes      []tlog.Hash
	checkpoints []store.Checkpoint
	notes       store.TileNotes
}

// New returns an empty log of a workspace.
func New(origin, workspaceID string) *Log {
	return &Log{WorkspaceID: workspaceID, Origin: origin}
}

// Append adds a leaf for the event (timestampNs, id) with leaf hash h and
// returns its index.
func (l *Log) Append(timestampNs int64, id string, h tlog.Hash) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.size
	hs, err := tlog.StoredHashesForRecordHash(n, h, l.reader())
	if err != nil {
		panic(err) // the hashes are in memory
	}
	l.hashes = append(l.hashes, hs...)
	l.leaves = append(l.leaves, store.Leaf{WorkspaceID: l.WorkspaceID, Index: n, TimestampNs: timestampNs, ID: id, Hash: h})
	l.size++
	return n
}

// Size is the tree size (leaves appended, dropped ones included).
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// AllLeaves returns a copy of the leaves.
func (l *Log) AllLeaves() []store.Leaf {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]store.Leaf(nil), l.leaves...)
}

// StoredHashes returns a copy of the stored hashes, by tlog index.
func (l *Log) StoredHashes() []tlog.Hash {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tlog.Hash(nil), l.hashes...)
}

func (l *Log) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("%w: %d", store.ErrHashMissing, x)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// Body returns the C2SP tlog-checkpoint text of a tree.
func Body(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]))
}

// Sign signs a checkpoint of the current size with k and keeps it.
func (l *Log) Sign(k Key, at time.Time) (store.Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := l.size
	root, err := tlog.TreeHash(size, l.reader())
	if err != nil {
		return store.Checkpoint{}, err
	}
	msg, err := note.Sign(&note.Note{Text: Body(l.Origin+"/"+l.WorkspaceID, size, root)}, k.Signer)
	if err != nil {
		return store.Checkpoint{}, err
	}
	cp := store.Checkpoint{WorkspaceID: l.WorkspaceID, Size: size, Root: root, Note: string(msg),
		KeyName: k.Signer.Name(), SignedAt: at.UTC().Truncate(time.Second)}
	l.checkpoints = append(l.checkpoints, cp)
	return cp, nil
}

// LatestCheckpoint implements the API's log reader.
func (l *Log) LatestCheckpoint(_ context.Context, ws string) (store.Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ws != l.WorkspaceID || len(l.checkpoints) == 0 {
		return store.Checkpoint{}, store.ErrNoCheckpoint
	}
	return l.checkpoints[len(l.checkpoints)-1], nil
}

// CheckpointAt implements the API's log reader.
func (l *Log) CheckpointAt(_ context.Context, ws string, size int64) (store.Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cp := range l.checkpoints {
		if ws == l.WorkspaceID && cp.Size == size {
			return cp, nil
		}
	}
	return store.Checkpoint{}, store.ErrNoCheckpoint
}

// LeafByID implements the API's log reader.
func (l *Log) LeafByID(_ context.Context, ws, id string) (store.Leaf, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lf := range l.leaves {
		if ws == l.WorkspaceID && lf.ID == id {
			return lf, nil
		}
	}
	return store.Leaf{}, store.ErrNoLeaf
}

// LeafByKey implements the API's log reader.
func (l *Log) LeafByKey(_ context.Context, ws string, k store.Key) (store.Leaf, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lf := range l.leaves {
		if ws == l.WorkspaceID && lf.ID == k.ID && lf.TimestampNs == k.TimestampNs {
			return lf, nil
		}
	}
	return store.Leaf{}, store.ErrNoLeaf
}

// HashReader implements the API's log reader.
func (l *Log) HashReader(_ context.Context, ws string) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if ws != l.WorkspaceID {
			return nil, store.ErrHashMissing
		}
		return l.reader().ReadHashes(indexes)
	})
}

// Leaves calls fn for each leaf with an index in [from, to).
func (l *Log) Leaves(_ context.Context, ws string, from, to int64, fn func(store.Leaf) error) error {
	for _, lf := range l.AllLeaves() {
		if ws == l.WorkspaceID && lf.Index >= from && lf.Index < to {
			if err := fn(lf); err != nil {
				return err
			}
		}
	}
	return nil
}

// ProveTree returns a consistency proof from size from to size to.
func (l *Log) ProveTree(ctx context.Context, ws string, from, to int64) (tlog.TreeProof, error) {
	return tlog.ProveTree(to, from, l.HashReader(ctx, ws))
}

// NoteTiles signs with k the tile notes (schemas/tilenote) of every
// complete tile, from the leaves' event times, as the sealer does, and
// keeps them (replacing earlier ones).
func (l *Log) NoteTiles(k Key) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notes = store.TileNotes{Times: map[int64][]string{}, Newest: map[int64][]store.NewestNote{}}
	for tile := int64(0); (tile+1)*tilenote.Leaves <= l.size; tile++ {
		tm := tilenote.Times{Tile: tilenote.Tile{Origin: l.Origin, Workspace: l.WorkspaceID, Index: tile,
			Hash: l.hashes[tlog.StoredHashIndex(tilenote.Height, tile)]}}
		for _, lf := range l.leaves {
			if lf.Index/tilenote.Leaves == tile {
				tm.Times[lf.Index%tilenote.Leaves] = lf.TimestampNs / 1e9
			}
		}
		msg, err := note.Sign(&note.Note{Text: tm.Text()}, k.Signer)
		if err != nil {
			return err
		}
		l.notes.Times[tile] = []string{string(msg)}
		n := tm.Newest()
		if msg, err = note.Sign(&note.Note{Text: n.Text()}, k.Signer); err != nil {
			return err
		}
		l.notes.Newest[tile] = []store.NewestNote{{Newest: n.Newest, Signature: tilenote.Signature(msg, n.Text())}}
	}
	return nil
}

// SetTileNotes replaces the kept tile notes (tests of forged notes).
func (l *Log) SetTileNotes(n store.TileNotes) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.notes = n
}

// TileNotes implements the verifier's source.
func (l *Log) TileNotes(_ context.Context, ws string) (store.TileNotes, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := store.TileNotes{Times: map[int64][]string{}, Newest: map[int64][]store.NewestNote{}}
	if ws != l.WorkspaceID {
		return out, nil
	}
	for tile, ns := range l.notes.Times {
		out.Times[tile] = append([]string(nil), ns...)
	}
	for tile, ns := range l.notes.Newest {
		out.Newest[tile] = append([]store.NewestNote(nil), ns...)
	}
	return out, nil
}

// Drop removes the leaves of the given indexes (as retention does), keeping
// the stored hashes.
func (l *Log) Drop(indexes ...int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	drop := map[int64]bool{}
	for _, i := range indexes {
		drop[i] = true
	}
	kept := l.leaves[:0]
	for _, lf := range l.leaves {
		if !drop[lf.Index] {
			kept = append(kept, lf)
		}
	}
	l.leaves = kept
}

// Batcher is what Insert needs of a ClickHouse connection.
type Batcher interface {
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// Insert writes the log's leaves, stored hashes and checkpoints into the
// log tables of database (migration 6), as the sealer would.
func (l *Log) Insert(ctx context.Context, conn Batcher, database string) error {
	return InsertAll(ctx, conn, database, l)
}

// InsertAll writes the logs as Insert does, in one batch per table for
// all of them: a test storing several workspaces' logs spanning many
// days writes each day partition once, not once per log.
func InsertAll(ctx context.Context, conn Batcher, database string, logs ...*Log) error {
	var (
		hashes       []migrations.StoredHash
		leaves       []migrations.Leaf
		cps          []migrations.Checkpoint
		times, newst []migrations.TileNote
	)
	for _, l := range logs {
		l.rows(&hashes, &leaves, &cps, &times, &newst)
	}
	if err := insert(ctx, conn, migrations.Hashes.Insert(database), hashes, migrations.Hashes.Values); err != nil {
		return err
	}
	if err := insert(ctx, conn, migrations.Leaves.Insert(database), leaves, migrations.Leaves.Values); err != nil {
		return err
	}
	if err := insert(ctx, conn, migrations.TileTimes.Insert(database), times, migrations.TileTimes.Values); err != nil {
		return err
	}
	if err := insert(ctx, conn, migrations.TileNewest.Insert(database), newst, migrations.TileNewest.Values); err != nil {
		return err
	}
	return insert(ctx, conn, migrations.Checkpoints.Insert(database), cps, migrations.Checkpoints.Values)
}

// rows appends the log's rows of each log table.
func (l *Log) rows(hashes *[]migrations.StoredHash, leaves *[]migrations.Leaf, cps *[]migrations.Checkpoint, times, newest *[]migrations.TileNote) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, h := range l.hashes {
		level, _ := tlog.SplitStoredHashIndex(int64(i))
		*hashes = append(*hashes, migrations.StoredHash{WorkspaceID: l.WorkspaceID, Index: uint64(i), Hash: string(h[:]), Level: uint8(level)})
	}
	for _, lf := range l.leaves {
		*leaves = append(*leaves, migrations.Leaf{WorkspaceID: l.WorkspaceID, Index: uint64(lf.Index), TimestampNs: lf.TimestampNs,
			ID: lf.ID, Hash: string(lf.Hash[:]), SealedAt: time.Unix(0, lf.TimestampNs).UTC().Truncate(time.Second)})
	}
	for _, cp := range l.checkpoints {
		*cps = append(*cps, migrations.Checkpoint{WorkspaceID: l.WorkspaceID, Size: uint64(cp.Size), Root: string(cp.Root[:]),
			Note: cp.Note, KeyName: cp.KeyName, SignedAt: cp.SignedAt})
	}
	noteRows(l.WorkspaceID, l.notes, times, newest)
}

// newestOf returns the newest known time of a signed tile-times note (0
// when it is not one), as the sealer's rows carry it.
func newestOf(signed string) int64 {
	body, _, _ := strings.Cut(signed, "\n\n")
	tm, err := tilenote.ParseTimes(body + "\n")
	if err != nil {
		return 0
	}
	var newest int64
	for _, t := range tm.Times {
		newest = max(newest, t)
	}
	return newest
}

// noteRows appends the rows of tile notes of the tile notes' tables
// (migration 8).
func noteRows(ws string, n store.TileNotes, times, newest *[]migrations.TileNote) {
	for tile, texts := range n.Times {
		for _, text := range texts {
			*times = append(*times, migrations.TileNote{WorkspaceID: ws, Tile: uint64(tile), Newest: time.Unix(newestOf(text), 0).UTC(), Note: text})
		}
	}
	for tile, notes := range n.Newest {
		for _, nn := range notes {
			*newest = append(*newest, migrations.TileNote{WorkspaceID: ws, Tile: uint64(tile), Newest: time.Unix(nn.Newest, 0).UTC(), Note: nn.Signature})
		}
	}
}

func insert[R any](ctx context.Context, conn Batcher, query string, rows []R, values func(*R) []any) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", query, err)
	}
	for i := range rows {
		if err := b.Append(values(&rows[i])...); err != nil {
			_ = b.Abort()
			return fmt.Errorf("append: %w", err)
		}
	}
	return b.Send()
}

// LeafIndexes implements the API's log reader.
func (l *Log) LeafIndexes(_ context.Context, ws string, keys []store.Key, size int64) (map[store.Key]int64, error) {
	want := map[store.Key]bool{}
	for _, k := range keys {
		want[k] = true
	}
	out := map[store.Key]int64{}
	for _, lf := range l.AllLeaves() {
		if k := (store.Key{TimestampNs: lf.TimestampNs, ID: lf.ID}); ws == l.WorkspaceID && want[k] && lf.Index < size {
			out[k] = lf.Index
		}
	}
	return out, nil
}

// Execer runs one statement.
type Execer interface {
	Exec(ctx context.Context, query string, args ...any) error
}

// InsertHex writes the log tables as Insert does, in statements whose
// hashes are unhex() literals (for connections that pass only text, such
// as the in-process current ClickHouse of internal/chdbtest).
func (l *Log) InsertHex(ctx context.Context, conn Execer, database string) error {
	return InsertHexAll(ctx, conn, database, l)
}

// InsertHexAll writes the logs as InsertHex does, in one statement per
// table for all of them (see InsertAll).
func InsertHexAll(ctx context.Context, conn Execer, database string, logs ...*Log) error {
	var hashes, leaves, cps []string
	for _, l := range logs {
		l.hexRows(&hashes, &leaves, &cps)
	}
	for _, ins := range []struct {
		table string
		cols  []string
		rows  []string
	}{{migrations.HashesTable, migrations.Hashes.InsertColumns(), hashes}, {migrations.LeavesTable, migrations.Leaves.InsertColumns(), leaves},
		{migrations.CheckpointsTable, migrations.Checkpoints.InsertColumns(), cps}} {
		if len(ins.rows) == 0 {
			continue
		}
		sql := fmt.Sprintf("INSERT INTO %s.%s (%s) VALUES %s", database, ins.table, strings.Join(ins.cols, ", "), strings.Join(ins.rows, ", "))
		if err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("insert %s: %w", ins.table, err)
		}
	}
	return nil
}

// hexRows appends the log's rows of each log table as VALUES tuples.
func (l *Log) hexRows(hashes, leaves, cps *[]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, h := range l.hashes {
		level, _ := tlog.SplitStoredHashIndex(int64(i))
		*hashes = append(*hashes, fmt.Sprintf("(%s, %d, unhex('%x'), %d)", quote(l.WorkspaceID), i, h[:], level))
	}
	for _, lf := range l.leaves {
		*leaves = append(*leaves, fmt.Sprintf("(%s, %d, %d, %s, unhex('%x'), toDateTime(%d, 'UTC'))", quote(l.WorkspaceID), lf.Index,
			lf.TimestampNs, quote(lf.ID), lf.Hash[:], lf.TimestampNs/1e9))
	}
	for _, cp := range l.checkpoints {
		*cps = append(*cps, fmt.Sprintf("(%s, %d, unhex('%x'), unhex('%x'), %s, toDateTime(%d, 'UTC'))", quote(l.WorkspaceID), cp.Size,
			cp.Root[:], cp.Note, quote(cp.KeyName), cp.SignedAt.Unix()))
	}
}

// quote is a ClickHouse string literal of s (test names: letters, digits
// and punctuation).
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
