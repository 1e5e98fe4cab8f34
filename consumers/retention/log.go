package retention

// The integrity log under retention (docs/integrity.md#retention): leaf
// rows go with their events' day partitions; the stored hashes below tile
// level of tiles whose events all expired are deleted, and the hashes
// above (a tile's own hash and its parents) stay, so the roots, the
// inclusion proofs of live events and the consistency proofs between
// checkpoints keep verifying.

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TileHeight is the height of the tiles the log is reduced by: a tile is
// 2^8 = 256 leaves, whose 510 stored hashes below level 8 retention
// deletes once all 256 events expired, keeping the tile's hash.
const TileHeight = 8

// reduceChunk is how many workspaces one delete names.
const reduceChunk = 500

// Reduction is what ReduceLog decided for one workspace: its stored hashes
// below TileHeight with an index under Below are deleted (Tiles whole
// tiles).
type Reduction struct {
	WorkspaceID string
	Tiles       int64
	Below       int64
}

// ReduceLog deletes the stored hashes below TileHeight of every complete
// tile whose events all expired: the tiles before the workspace's first
// leaf that still has a row (leaf rows go with their events' partitions),
// or every complete tile of a workspace with none left. On 18.16 a delete
// is an ALTER TABLE ... DELETE mutation, which the server applies in the
// background by rewriting the parts that hold such hashes; it is issued
// only for workspaces that still have some, so running it again is cheap.
func (e *Enforcer) ReduceLog(ctx context.Context) ([]Reduction, error) {
	sizes, err := e.perWorkspace(ctx, "SELECT workspace_id, max(hash_index) + 1 FROM %s GROUP BY workspace_id", migrations.HashesTable)
	if err != nil {
		return nil, fmt.Errorf("read the logs' sizes: %w", err)
	}
	// Live leaves are in the leaves table and, for workspaces kept past
	// the deployment's window, the long-term leaves table.
	live := map[string]uint64{}
	for _, table := range []string{migrations.LeavesTable, migrations.KeptLeavesTable} {
		first, err := e.perWorkspace(ctx, "SELECT workspace_id, min(leaf_index) FROM %s GROUP BY workspace_id", table)
		if err != nil {
			return nil, fmt.Errorf("read the logs' first live leaves: %w", err)
		}
		for ws, i := range first {
			if j, ok := live[ws]; !ok || i < j {
				live[ws] = i
			}
		}
	}
	lowest, err := e.perWorkspace(ctx, fmt.Sprintf("SELECT workspace_id, min(hash_index) FROM %%s WHERE level < %d GROUP BY workspace_id", TileHeight), migrations.HashesTable)
	if err != nil {
		return nil, fmt.Errorf("read the logs' lowest tile hashes: %w", err)
	}
	var out []Reduction
	for ws, count := range sizes {
		size, err := sealer.SizeOf(int64(count))
		if err != nil {
			return nil, fmt.Errorf("log of %s: %w", ws, err)
		}
		tiles := size >> TileHeight
		if first, ok := live[ws]; ok {
			tiles = min(tiles, int64(first)>>TileHeight)
		}
		below := tlog.StoredHashIndex(0, tiles<<TileHeight)
		if low, ok := lowest[ws]; ok && int64(low) < below {
			out = append(out, Reduction{WorkspaceID: ws, Tiles: tiles, Below: below})
		}
	}
	for lo := 0; lo < len(out); lo += reduceChunk {
		if err := e.deleteBelow(ctx, out[lo:min(lo+reduceChunk, len(out))]); err != nil {
			return out[:lo], err
		}
	}
	return out, nil
}

func (e *Enforcer) deleteBelow(ctx context.Context, rs []Reduction) error {
	conds := make([]string, len(rs))
	args := make([]any, 0, 2*len(rs))
	for i, r := range rs {
		conds[i] = "(workspace_id = ? AND hash_index < ?)"
		args = append(args, r.WorkspaceID, uint64(r.Below))
	}
	q := fmt.Sprintf("ALTER TABLE %s.%s%s DELETE WHERE level < %d AND (%s)", e.database, e.schema.StorageTable(migrations.HashesTable),
		e.schema.OnCluster(), TileHeight, strings.Join(conds, " OR "))
	if err := e.conn.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("delete expired tiles' hashes: %w", err)
	}
	return nil
}

// perWorkspace runs a query of (workspace_id, UInt64) over table (%s).
func (e *Enforcer) perWorkspace(ctx context.Context, query, table string) (map[string]uint64, error) {
	rows, err := e.conn.Query(ctx, fmt.Sprintf(query, e.database+"."+table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var (
			ws string
			n  uint64
		)
		if err := rows.Scan(&ws, &n); err != nil {
			return nil, err
		}
		out[ws] = n
	}
	return out, rows.Err()
}
