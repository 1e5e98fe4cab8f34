package sealer

// The ClickHouse side of the background audit: leaf rows and their
// level-0 stored hashes by (workspace, index).

import (
	"context"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// LeavesAt implements leafAuditor: two point reads by the tables' sorting
// keys, lookupChunk leaves at a time.
func (s *ClickHouseStore) LeavesAt(ctx context.Context, at []LeafAt) (map[LeafAt]StoredLeaf, error) {
	out := map[LeafAt]StoredLeaf{}
	for lo := 0; lo < len(at); lo += lookupChunk {
		chunk := at[lo:min(lo+lookupChunk, len(at))]
		leaves, hashes := make([]any, 0, 2*len(chunk)), make([]any, 0, 2*len(chunk))
		for _, a := range chunk {
			leaves = append(leaves, a.WorkspaceID, uint64(a.Index))
			hashes = append(hashes, a.WorkspaceID, uint64(storedLeaf(a.Index)))
		}
		set := "(" + strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", ") + ")"
		err := s.each(ctx, "audited leaves", "SELECT workspace_id, leaf_index, timestamp_ns, id, leaf_hash FROM "+s.table(migrations.LeavesTable)+
			" WHERE (workspace_id, leaf_index) IN "+set+" GROUP BY workspace_id, leaf_index, timestamp_ns, id, leaf_hash", leaves,
			func(scan func(...any) error) error {
				var l migrations.Leaf
				if err := scan(&l.WorkspaceID, &l.Index, &l.TimestampNs, &l.ID, &l.Hash); err != nil {
					return err
				}
				a := LeafAt{l.WorkspaceID, int64(l.Index)}
				sl := out[a]
				sl.Rows = append(sl.Rows, l)
				out[a] = sl
				return nil
			})
		if err != nil {
			return nil, err
		}
		// Every distinct stored hash of the index (the log's reads take
		// any one of unmerged copies, which are equal unless forged).
		err = s.each(ctx, "audited leaves' hashes", "SELECT DISTINCT workspace_id, hash_index, hash FROM "+s.table(migrations.HashesTable)+
			" WHERE (workspace_id, hash_index) IN "+set, hashes, func(scan func(...any) error) error {
			var (
				ws, h string
				x     uint64
			)
			if err := scan(&ws, &x, &h); err != nil {
				return err
			}
			_, i := tlog.SplitStoredHashIndex(int64(x)) // level 0: the indexes asked
			a := LeafAt{ws, i}
			sl := out[a]
			if sl.Hash != "" && sl.Hash != h {
				sl.Forked = true
			}
			sl.Hash = h
			out[a] = sl
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
