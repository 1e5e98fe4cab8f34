package retention_test

// The retention drill's checks (policy_integration_test.go): what the
// store serves, what the tables hold, what was archived, and what verify
// proves.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// served returns the ids the store lists for ws, newest first, every
// page, and checks that Count, Export and Facets agree.
func (d *drill) served(ws string) []string {
	ctx := context.Background()
	f := store.Filter{WorkspaceID: ws}
	var ids []string
	var after *store.Cursor
	for {
		p, err := d.store.List(ctx, f, after, d.srv.pageSize)
		require.NoError(d.t, err)
		for _, e := range p.Events {
			ids = append(ids, e.ID)
			require.False(d.t, e.Restored, e.ID)
		}
		if p.Next == nil {
			break
		}
		after = p.Next
	}
	n, err := d.store.Count(ctx, f)
	require.NoError(d.t, err)
	require.EqualValues(d.t, len(ids), n, "%s: Count agrees with the pages", ws)
	var exported []string
	require.NoError(d.t, d.store.Export(ctx, f, func(r *migrations.Row) error {
		exported = append(exported, r.ID)
		return nil
	}))
	require.Equal(d.t, ids, exported, "%s: Export serves what List does", ws)
	facets, err := d.store.Facets(ctx, f)
	require.NoError(d.t, err)
	var total uint64
	for _, c := range facets.Events {
		total += c.Count
	}
	require.EqualValues(d.t, len(ids), total, "%s: Facets count what List serves", ws)
	return ids
}

// checkWindows: each workspace serves exactly its window, every page,
// newest first, each event once; an event just outside is not found by
// id, one just inside is (the events around the edge are looked up).
func (d *drill) checkWindows(stage string) {
	ctx := context.Background()
	for _, w := range d.workspaces {
		want := d.want(w)
		require.Equal(d.t, want, d.served(w.id), "%s: %s serves exactly its window", stage, w.id)
		p := d.policy(w)
		cut := p.Cutoff(d.now)
		for i, e := range w.events {
			// The events around the window's edge, and the oldest and newest.
			if i > 0 && i < len(w.events)-1 && e.Timestamp.Sub(cut).Abs() > 36*time.Hour {
				continue
			}
			_, err := d.store.Get(ctx, w.id, e.ID)
			if p.Keeps(e.Timestamp, d.now) {
				require.NoError(d.t, err, "%s: %s %s", stage, w.id, e.ID)
			} else {
				require.ErrorIs(d.t, err, store.ErrNotFound, "%s: %s %s", stage, w.id, e.ID)
			}
		}
	}
}

// stored returns, for each table holding events or their leaves, the ids
// of ws's rows in it.
func (d *drill) stored(ws string) map[string][]string {
	tables := []string{migrations.Table, migrations.KeptTable, migrations.LeavesTable, migrations.KeptLeavesTable}
	for _, l := range migrations.Lookups {
		tables = append(tables, l.Table)
	}
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := d.srv.conn.Query(context.Background(), fmt.Sprintf("SELECT DISTINCT id FROM %s.%s WHERE workspace_id = ? ORDER BY id", d.srv.db, table), ws)
		require.NoError(d.t, err)
		for rows.Next() {
			var id string
			require.NoError(d.t, rows.Scan(&id))
			out[table] = append(out[table], id)
		}
		require.NoError(d.t, rows.Err())
		rows.Close()
	}
	return out
}

// checkDisk: a workspace's rows before its window's day are gone from
// every table (not only hidden), its rows inside are stored with their
// leaves (in the events or the long-term tables), and a held workspace
// keeps every row.
func (d *drill) checkDisk(stage string) {
	for _, w := range d.workspaces {
		p := d.policy(w)
		deleteBefore := p.Cutoff(d.now).Truncate(24 * time.Hour)
		stored := d.stored(w.id)
		for _, e := range w.events {
			in := func(table string) bool { _, ok := slices.BinarySearch(stored[table], e.ID); return ok }
			switch {
			case p.Hold || p.Keeps(e.Timestamp, d.now):
				require.True(d.t, in(migrations.Table) || in(migrations.KeptTable), "%s: %s %s is stored", stage, w.id, e.ID)
				require.True(d.t, in(migrations.LeavesTable) || in(migrations.KeptLeavesTable), "%s: %s %s keeps its leaf", stage, w.id, e.ID)
			case e.Timestamp.Before(deleteBefore):
				for table, ids := range stored {
					_, ok := slices.BinarySearch(ids, e.ID)
					require.False(d.t, ok, "%s: %s %s (%s) is gone from %s", stage, w.id, e.ID, e.Timestamp.Format(time.RFC3339), table)
				}
			}
		}
	}
}

// checkArchived: every day of a workspace with a row gone was archived
// before it went, and no day all of whose rows are kept was.
func (d *drill) checkArchived(stage string) {
	archived := d.archived.archived()
	for _, w := range d.workspaces {
		stored := d.stored(w.id)
		keptDays, goneDays := map[string]bool{}, map[string]bool{}
		for _, e := range w.events {
			day := w.id + "/" + e.Timestamp.UTC().Format(time.DateOnly)
			_, inEvents := slices.BinarySearch(stored[migrations.Table], e.ID)
			_, inKept := slices.BinarySearch(stored[migrations.KeptTable], e.ID)
			if inEvents || inKept {
				keptDays[day] = true
			} else {
				goneDays[day] = true
			}
		}
		for day := range goneDays {
			require.True(d.t, archived[day], "%s: %s was archived before its rows went", stage, day)
		}
		for day := range archived {
			if strings.HasPrefix(day, w.id+"/") && !goneDays[day] {
				require.False(d.t, keptDays[day], "%s: %s was archived, but all its rows are kept", stage, day)
			}
		}
	}
}

// checkLog: verify's online check proves every workspace's live events
// against its signed checkpoint: every served row hashes to its leaf and
// the tree recomputed from the rows (and the stored hashes of expired
// ones) has the signed root. Leaves gone with their events count as
// expired only before the workspace's own window.
func (d *drill) checkLog(stage string) {
	ctx := context.Background()
	vs, err := verify.Verifiers([]string{d.key.Verifier})
	require.NoError(d.t, err)
	src := verify.StoreSource{Log: store.NewLog(d.srv.conn, d.srv.db), Events: d.store}
	for _, w := range d.workspaces {
		p := d.policy(w)
		o := verify.OnlineOptions{WorkspaceID: w.id, Known: vs, Origin: drillOrigin, UnsealedAfter: d.now.UnixNano(), ReceivedBy: d.now.UnixNano()}
		if !p.Hold {
			o.AssumeRetention, o.RetentionCut = true, p.Cutoff(d.now).UnixNano()
		}
		rep, err := verify.Online(ctx, src, o)
		require.NoError(d.t, err)
		require.Empty(d.t, rep.Problems, "%s: %s", stage, w.id)
		require.Equal(d.t, len(d.want(w)), rep.Checked, "%s: %s: every live event is checked", stage, w.id)
	}
}

// hashes counts ws's stored hashes of the integrity log.
func (d *drill) hashes(ws string) uint64 {
	var n uint64
	require.NoError(d.t, d.srv.conn.QueryRow(context.Background(), "SELECT count() FROM (SELECT DISTINCT hash_index FROM "+d.srv.db+"."+migrations.HashesTable+" WHERE workspace_id = ?)", ws).Scan(&n))
	return n
}

func (d *drill) workspace(id string) *drillWorkspace {
	for _, w := range d.workspaces {
		if w.id == id {
			return w
		}
	}
	d.t.Fatalf("no workspace %s", id)
	return nil
}

func (d *drill) archivedOf(ws string) []string {
	var out []string
	for day := range d.archived.archived() {
		if strings.HasPrefix(day, ws+"/") {
			out = append(out, day)
		}
	}
	return out
}
