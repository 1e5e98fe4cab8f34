package sealer

// The long-term tables in ClickHouse (KeptStore): the leaves and rows of
// late kept events (kept.go).

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// KeptLeaves implements KeptStore: one query naming the keys' (workspace,
// id) pairs as external data, or lookupChunk keys per query named in its
// text (WithLiteralKeys). The long-term leaves table is sorted by
// workspace and leaf index: the query reads the leaf ids of the keys'
// workspaces only (no index serves a lookup by id).
func (s *ClickHouseStore) KeptLeaves(ctx context.Context, keys []Key) (map[Key]bool, error) {
	found := map[[2]string]bool{}
	scan := func(scan func(...any) error) error {
		var ws, id string
		if err := scan(&ws, &id); err != nil {
			return err
		}
		found[[2]string{ws, id}] = true
		return nil
	}
	q := "SELECT DISTINCT workspace_id, id FROM " + s.table(migrations.KeptLeavesTable) + " WHERE workspace_id IN %s AND (workspace_id, id) IN %s"
	if !s.literal && len(keys) > 0 {
		tbl, err := ext.NewTable(keysTable, ext.Column("workspace_id", "String"), ext.Column("id", "String"))
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if err := tbl.Append(k.WorkspaceID, k.ID); err != nil {
				return nil, err
			}
		}
		ectx := clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl))
		set := "(SELECT workspace_id, id FROM " + keysTable + ")"
		if err := s.each(ectx, "long-term leaves by id", fmt.Sprintf(q, "(SELECT workspace_id FROM "+keysTable+")", set), nil, scan); err != nil {
			return nil, err
		}
	}
	for lo := 0; s.literal && lo < len(keys); lo += lookupChunk {
		chunk := keys[lo:min(lo+lookupChunk, len(keys))]
		seen := map[string]bool{}
		var wss []string
		for _, k := range chunk {
			if !seen[k.WorkspaceID] {
				seen[k.WorkspaceID] = true
				wss = append(wss, k.WorkspaceID)
			}
		}
		list, args := in(wss)
		pairs := strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", ")
		for _, k := range chunk {
			args = append(args, k.WorkspaceID, k.ID)
		}
		if err := s.each(ctx, "long-term leaves by id", fmt.Sprintf(q, "("+list+")", "("+pairs+")"), args, scan); err != nil {
			return nil, err
		}
	}
	out := map[Key]bool{}
	for _, k := range keys {
		if found[[2]string{k.WorkspaceID, k.ID}] {
			out[k] = true
		}
	}
	return out, nil
}

// KeptRows implements KeptStore as Rows does, from the long-term table's
// rows kept by their policy (restored = 0).
func (s *ClickHouseStore) KeptRows(ctx context.Context, keys []Key) (map[Key]migrations.Row, error) {
	return s.readRows(ctx, migrations.KeptTable, " AND restored = 0", keys)
}

// AppendKept implements KeptStore in one insert, without ctx's
// cancellation (as Append).
func (s *ClickHouseStore) AppendKept(ctx context.Context, leaves []migrations.Leaf) error {
	return insertInto(context.WithoutCancel(ctx), s.conn, migrations.KeptLeavesInsert(s.db), migrations.Leaves, leaves)
}
