// Package tampertest tampers with a workspace's trail in ClickHouse the
// way an attacker with database access would, for the tamper drill and
// its integration test: SQL over the native connection, as
// clickhouse-client would send it.
//
// The weak attacker deletes a row, changes a row's actor, or inserts a
// forged row. The strong attacker rewrites a row and rebuilds the
// workspace's leaves and stored hashes from the rows, so that ClickHouse
// is self-consistent, and deletes the checkpoints it cannot re-sign.
package tampertest

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Tamperer changes one database's trail.
type Tamperer struct {
	Conn     driver.Conn
	Database string
}

// DeleteRow deletes an event's stored row(s).
func (t Tamperer) DeleteRow(ctx context.Context, ws, id string) error {
	return t.mutate(ctx, fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE workspace_id = ? AND id = ?", t.Database, migrations.Table), ws, id)
}

// SetActor changes an event's actor id.
func (t Tamperer) SetActor(ctx context.Context, ws, id, actorID string) error {
	return t.mutate(ctx, fmt.Sprintf("ALTER TABLE %s.%s UPDATE actor_id = ? WHERE workspace_id = ? AND id = ?", t.Database, migrations.Table), actorID, ws, id)
}

// InsertForged inserts a row no producer sent.
func (t Tamperer) InsertForged(ctx context.Context, r migrations.Row) error {
	b, err := t.Conn.PrepareBatch(ctx, migrations.Events.Insert(t.Database))
	if err != nil {
		return err
	}
	if err := b.Append(r.Values()...); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// RewriteConsistently sets an event's actor id, then rebuilds the
// workspace's leaves and stored hashes from the stored rows and deletes
// its checkpoints: every table agrees with every other again.
func (t Tamperer) RewriteConsistently(ctx context.Context, ws, id, actorID string) error {
	if err := t.SetActor(ctx, ws, id, actorID); err != nil {
		return err
	}
	lg := store.NewLog(t.Conn, t.Database)
	events := store.New(t.Conn, t.Database, 3650, time.Now)
	rows := map[[2]any]migrations.Row{}
	err := events.Export(ctx, store.Filter{WorkspaceID: ws}, func(r *migrations.Row) error {
		rows[[2]any{r.TimestampNs, r.ID}] = *r
		return nil
	})
	if err != nil {
		return err
	}
	rebuilt := logtest.New("", ws)
	err = lg.Leaves(ctx, ws, 0, 1<<62, func(l store.Leaf) error {
		if r, ok := rows[[2]any{l.TimestampNs, l.ID}]; ok {
			l.Hash = leaf.Hash(&r)
		}
		rebuilt.Append(l.TimestampNs, l.ID, l.Hash)
		return nil
	})
	if err != nil {
		return err
	}
	for _, table := range []string{migrations.LeavesTable, migrations.HashesTable, migrations.CheckpointsTable} {
		if err := t.mutate(ctx, fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE workspace_id = ?", t.Database, table), ws); err != nil {
			return err
		}
	}
	return rebuilt.Insert(ctx, t.Conn, t.Database)
}

// mutate runs a mutation and waits until the server has applied it
// (18.16 applies mutations in the background).
func (t Tamperer) mutate(ctx context.Context, sql string, args ...any) error {
	if err := t.Conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var pending uint64
		if err := t.Conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", t.Database).Scan(&pending); err != nil {
			return fmt.Errorf("wait for mutation: %w", err)
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for mutation: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
