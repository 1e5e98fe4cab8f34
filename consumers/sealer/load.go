package sealer

// Loading workspaces' logs at takeover: a few queries per 1,000
// workspaces, whatever their number.

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Load implements Store, lookupChunk workspaces at a time. The size comes
// from the stored hashes, which are inserted before the leaves and never
// deleted at the right edge (see docs/integrity.md).
func (s *ClickHouseStore) Load(ctx context.Context, wss []string, seenFrom int64, maxSeen, recent int) (map[string]State, error) {
	out := make(map[string]State, len(wss))
	for lo := 0; lo < len(wss); lo += lookupChunk {
		chunk := wss[lo:min(lo+lookupChunk, len(wss))]
		st := make(map[string]*State, len(chunk))
		for _, ws := range chunk {
			st[ws] = &State{SeenFrom: seenFrom}
		}
		for _, step := range []func(context.Context, map[string]*State, []string, int, int) error{
			s.loadSizes, s.loadEdges, s.loadSeen, s.loadOrphans, s.loadCheckpoints, s.loadNoted,
		} {
			if err := step(ctx, st, chunk, maxSeen, recent); err != nil {
				return nil, err
			}
		}
		for ws, v := range st {
			out[ws] = *v
		}
	}
	return out, nil
}

// in renders the placeholders of an IN list of the workspaces.
func in(wss []string) (string, []any) {
	args := make([]any, len(wss))
	for i, ws := range wss {
		args[i] = ws
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(wss)), ", "), args
}

// each runs a query and scans each row with scan.
func (s *ClickHouseStore) each(ctx context.Context, what, query string, args []any, scan func(scan func(...any) error) error) error {
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows.Scan); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

// eachHash calls fn with each stored hash (unmerged copies collapsed) of
// the hashes table's rows matching where; a stored hash that is not
// tlog.HashSize bytes is an error.
func (s *ClickHouseStore) eachHash(ctx context.Context, what, where string, args []any, fn func(ws string, index int64, h tlog.Hash)) error {
	return s.each(ctx, what, "SELECT workspace_id, hash_index, any(hash) FROM "+s.table(migrations.HashesTable)+
		" WHERE "+where+" GROUP BY workspace_id, hash_index", args, func(scan func(...any) error) error {
		var (
			ws string
			x  uint64
			h  string
		)
		if err := scan(&ws, &x, &h); err != nil {
			return err
		}
		if len(h) != tlog.HashSize {
			return fmt.Errorf("stored hash %d of %s has %d bytes", x, ws, len(h))
		}
		fn(ws, int64(x), tlog.Hash([]byte(h)))
		return nil
	})
}

func (s *ClickHouseStore) loadSizes(ctx context.Context, st map[string]*State, wss []string, _, _ int) error {
	return s.eachMax(ctx, "the logs' sizes", migrations.HashesTable, "hash_index", wss, func(ws string, top uint64) error {
		size, err := SizeOf(int64(top) + 1)
		if err != nil {
			return fmt.Errorf("log of %s: %w", ws, err)
		}
		st[ws].Size = size
		return nil
	})
}

// eachMax calls fn with the largest value of column in table of each of
// the workspaces that has rows.
func (s *ClickHouseStore) eachMax(ctx context.Context, what, table, column string, wss []string, fn func(ws string, top uint64) error) error {
	list, args := in(wss)
	return s.each(ctx, what, "SELECT workspace_id, max("+column+") FROM "+s.table(table)+
		" WHERE workspace_id IN ("+list+") GROUP BY workspace_id", args, func(scan func(...any) error) error {
		var (
			ws  string
			top uint64
		)
		if err := scan(&ws, &top); err != nil {
			return err
		}
		return fn(ws, top)
	})
}

func (s *ClickHouseStore) loadEdges(ctx context.Context, st map[string]*State, wss []string, _, _ int) error {
	var conds []string
	var args []any
	for _, ws := range wss {
		st[ws].Edge = map[int64]tlog.Hash{}
		if idx := edgeIndexes(st[ws].Size); len(idx) > 0 {
			conds = append(conds, "(workspace_id = ? AND hash_index IN ("+joinInts(idx)+"))")
			args = append(args, ws)
		}
	}
	if len(conds) == 0 {
		return nil
	}
	err := s.eachHash(ctx, "the logs' right edges", strings.Join(conds, " OR "), args, func(ws string, x int64, h tlog.Hash) {
		st[ws].Edge[x] = h
	})
	if err != nil {
		return err
	}
	for _, ws := range wss {
		if got, want := len(st[ws].Edge), len(edgeIndexes(st[ws].Size)); got != want {
			return fmt.Errorf("log of %s: %d of the %d stored hashes of its right edge (size %d) are missing", ws, want-got, want, st[ws].Size)
		}
	}
	return nil
}

// loadSeen reads the keys of the leaves with an event timestamp of at
// least SeenFrom, the latest maxSeen of each workspace; of a workspace
// with more, it raises SeenFrom past the oldest timestamp it could not
// read in full.
func (s *ClickHouseStore) loadSeen(ctx context.Context, st map[string]*State, wss []string, maxSeen, _ int) error {
	list, args := in(wss)
	seen := map[string][]Key{}
	err := s.each(ctx, "the logs' recent leaves", "SELECT workspace_id, timestamp_ns, id FROM (SELECT DISTINCT workspace_id, timestamp_ns, id FROM "+
		s.table(migrations.LeavesTable)+" WHERE workspace_id IN ("+list+") AND timestamp_ns >= ?) ORDER BY workspace_id, timestamp_ns DESC LIMIT ? BY workspace_id",
		append(args, st[wss[0]].SeenFrom, maxSeen+1), func(scan func(...any) error) error {
			var k Key
			if err := scan(&k.WorkspaceID, &k.TimestampNs, &k.ID); err != nil {
				return err
			}
			seen[k.WorkspaceID] = append(seen[k.WorkspaceID], k)
			return nil
		})
	if err != nil {
		return err
	}
	for ws, ks := range seen {
		if len(ks) > maxSeen {
			oldest := ks[len(ks)-1].TimestampNs
			st[ws].SeenFrom = oldest + 1
			for len(ks) > 0 && ks[len(ks)-1].TimestampNs == oldest {
				ks = ks[:len(ks)-1]
			}
		}
		st[ws].Seen = ks
	}
	return nil
}

// loadOrphans finds, among each workspace's last recent leaf indexes,
// those with stored hashes but no leaf row.
func (s *ClickHouseStore) loadOrphans(ctx context.Context, st map[string]*State, wss []string, _, recent int) error {
	var hconds, lconds []string
	var hargs, largs []any
	levelZero, withLeaf := map[string]map[int64]tlog.Hash{}, map[string]map[int64]bool{}
	for _, ws := range wss {
		if st[ws].Size == 0 {
			continue
		}
		from := max(st[ws].Size-int64(recent), 0)
		hconds, hargs = append(hconds, "(workspace_id = ? AND hash_index >= ?)"), append(hargs, ws, uint64(tlog.StoredHashIndex(0, from)))
		lconds, largs = append(lconds, "(workspace_id = ? AND leaf_index >= ?)"), append(largs, ws, uint64(from))
		levelZero[ws], withLeaf[ws] = map[int64]tlog.Hash{}, map[int64]bool{}
	}
	if len(hconds) == 0 {
		return nil
	}
	err := s.eachHash(ctx, "the logs' last leaf hashes", "level = 0 AND ("+strings.Join(hconds, " OR ")+")", hargs, func(ws string, x int64, h tlog.Hash) {
		levelZero[ws][x] = h
	})
	if err != nil {
		return err
	}
	err = s.each(ctx, "the logs' last leaves", "SELECT DISTINCT workspace_id, leaf_index FROM "+s.table(migrations.LeavesTable)+
		" WHERE "+strings.Join(lconds, " OR "), largs, func(scan func(...any) error) error {
		var (
			ws string
			i  uint64
		)
		if err := scan(&ws, &i); err != nil {
			return err
		}
		withLeaf[ws][int64(i)] = true
		return nil
	})
	if err != nil {
		return err
	}
	for ws, lz := range levelZero {
		st[ws].Orphans = Orphans(max(st[ws].Size-int64(recent), 0), st[ws].Size, lz, withLeaf[ws])
	}
	return nil
}

func (s *ClickHouseStore) loadCheckpoints(ctx context.Context, st map[string]*State, wss []string, _, _ int) error {
	list, args := in(wss)
	return s.each(ctx, "the latest checkpoints", "SELECT workspace_id, max(size), argMax(signed_at, size), argMax(note, size) FROM "+
		s.table(migrations.CheckpointsTable)+" WHERE workspace_id IN ("+list+") GROUP BY workspace_id", args, func(scan func(...any) error) error {
		var (
			ws   string
			size uint64
			v    State
		)
		if err := scan(&ws, &size, &v.SignedAt, &v.Note); err != nil {
			return err
		}
		st[ws].Signed, st[ws].SignedAt, st[ws].Note = int64(size), v.SignedAt, v.Note
		return nil
	})
}
