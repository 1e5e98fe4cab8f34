package sealer

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestAppendLeafIsTlogs: the stored hashes appendLeaf adds are tlog's
// (StoredHashesForRecordHash over every stored hash), at their indexes
// and levels; the edge it keeps is edgeIndexes(size) and gives tlog's
// root; complete tiles' hashes are noted. From an empty log, and from
// logs loaded at sizes with many bits set.
func TestAppendLeafIsTlogs(t *testing.T) {
	for _, start := range []int64{0, 255, 1023, 1365} {
		t.Run(fmt.Sprint(start), func(t *testing.T) {
			all := map[int64]tlog.Hash{}
			read := tlog.HashReaderFunc(func(xs []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(xs))
				for i, x := range xs {
					h, ok := all[x]
					if !ok {
						return nil, fmt.Errorf("hash %d missing", x)
					}
					out[i] = h
				}
				return out, nil
			})
			leafHash := func(i int64) tlog.Hash { return tlog.RecordHash(fmt.Appendf(nil, "leaf %d", i)) }
			for i := range start {
				add, err := tlog.StoredHashesForRecordHash(i, leafHash(i), read)
				require.NoError(t, err)
				for j, h := range add {
					all[tlog.StoredHashIndex(0, i)+int64(j)] = h
				}
			}
			st := State{Size: start, Edge: map[int64]tlog.Hash{}}
			for _, x := range edgeIndexes(start) {
				st.Edge[x] = all[x]
			}
			tr := newTree("ws", st)
			var got []migrations.StoredHash
			for i := start; i < start+1100; i++ {
				want, err := tlog.StoredHashesForRecordHash(i, leafHash(i), read)
				require.NoError(t, err)
				got, err = tr.appendLeaf(leafHash(i), got[:0])
				require.NoError(t, err)
				require.Len(t, got, len(want), "leaf %d", i)
				for j, h := range want {
					x := tlog.StoredHashIndex(0, i) + int64(j)
					all[x] = h
					require.Equal(t, migrations.StoredHash{WorkspaceID: "ws", Index: uint64(x), Hash: string(h[:]), Level: uint8(j)}, got[j], "leaf %d level %d", i, j)
				}
				require.Equal(t, edgeIndexes(i+1), slices.Sorted(maps.Keys(tr.edge)), "leaf %d: the edge", i)
				root, err := tlog.TreeHash(i+1, read)
				require.NoError(t, err)
				mine, err := tr.root()
				require.NoError(t, err)
				require.Equal(t, root, mine, "leaf %d: the root", i)
			}
			for tile, h := range tr.tileHashes {
				require.Equal(t, all[tlog.StoredHashIndex(8, tile)], h, "tile %d", tile)
			}
			require.NotEmpty(t, tr.tileHashes)
		})
	}
}

// TestAppendLeafWithoutItsEdgeChangesNothing: a log whose edge lacks a
// hash the next leaf needs fails, and stays as it was.
func TestAppendLeafWithoutItsEdgeChangesNothing(t *testing.T) {
	tr := newTree("ws", State{Size: 3, Edge: map[int64]tlog.Hash{tlog.StoredHashIndex(1, 0): sha256.Sum256([]byte("a"))}})
	out, err := tr.appendLeaf(tlog.RecordHash([]byte("x")), nil)
	require.Error(t, err, "leaf 3 needs the hash of leaf 2")
	require.Empty(t, out)
	require.EqualValues(t, 3, tr.size)
	require.Len(t, tr.edge, 1)
}
