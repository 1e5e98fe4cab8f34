package retention_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/producers/loadgen"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// logOf stores events (in that arrival order) and the log the sealer would
// build of them: one leaf each and the stored hashes. It returns the root.
func logOf(t *testing.T, conn driver.Conn, db string, events []event.Event) tlog.Hash {
	stacktest.InsertEvents(t, conn, db, events...)
	hashes := map[int64]tlog.Hash{}
	r := tlog.HashReaderFunc(func(xs []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(xs))
		for i, x := range xs {
			out[i] = hashes[x]
		}
		return out, nil
	})
	var leaves []migrations.Leaf
	var stored []migrations.StoredHash
	for i := range events {
		row := migrations.RowOf(&events[i])
		h := leaf.Hash(&row)
		leaves = append(leaves, migrations.Leaf{WorkspaceID: row.WorkspaceID, Index: uint64(i), TimestampNs: row.TimestampNs, ID: row.ID,
			Hash: string(h[:]), SealedAt: time.Now().UTC().Truncate(time.Second)})
		add, err := tlog.StoredHashesForRecordHash(int64(i), h, r)
		require.NoError(t, err)
		for j, sh := range add {
			x := tlog.StoredHashIndex(0, int64(i)) + int64(j)
			hashes[x] = sh
			stored = append(stored, migrations.StoredHash{WorkspaceID: row.WorkspaceID, Index: uint64(x), Hash: string(sh[:]), Level: uint8(j)})
		}
	}
	store := sealer.NewClickHouseStore(conn, db)
	require.NoError(t, store.Append(context.Background(), stored, leaves))
	root, err := tlog.TreeHash(int64(len(events)), r)
	require.NoError(t, err)
	return root
}

func events(t *testing.T, ws string, n int, at func(i int) time.Time) []event.Event {
	g, err := loadgen.New(loadgen.Config{Workspaces: 1, ZipfS: 1.1, Seed: 7}, time.Now)
	require.NoError(t, err)
	out := make([]event.Event, n)
	for i := range out {
		out[i] = g.Next()
		out[i].WorkspaceID, out[i].ID = ws, fmt.Sprintf("%s-%d", ws, i)
		out[i].Timestamp = at(i)
		out[i].ReceivedAt = at(i)
	}
	return out
}

// outOfOrder returns ws_a's 1,000 events in arrival order, whose expiry is
// not a prefix: events 0-599 are 100 days old (expired in a 90-day window)
// but for 300, which arrived backdated among them and is an hour old, as
// are 600-999. It also returns when the old ones start.
func outOfOrder(t *testing.T) ([]event.Event, time.Time) {
	now := time.Now().UTC()
	old, recent := now.Add(-100*24*time.Hour), now.Add(-time.Hour)
	return events(t, "ws_a", 1000, func(i int) time.Time {
		if i < 600 && i != 300 {
			return old.Add(time.Duration(i) * time.Second)
		}
		return recent.Add(time.Duration(i) * time.Second)
	}), old
}

// waitForMutations waits until the database's mutations are done.
func waitForMutations(t *testing.T, conn driver.Conn, db string) {
	require.Eventually(t, func() bool {
		var n uint64
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&n))
		return n == 0
	}, 60*time.Second, 50*time.Millisecond)
}

// TestExpiredTilesKeepOnlyTheirHashes: expiry is not a prefix of the log
// (ws_a's leaf 300 arrived backdated among old events... and is live). The
// complete tiles before the first live leaf lose their hashes below tile
// level; the roots, the live leaves' inclusion proofs and consistency
// proofs still verify, and a second run deletes nothing more.
func TestExpiredTilesKeepOnlyTheirHashes(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	a, old := outOfOrder(t)
	b := events(t, "ws_b", 300, func(i int) time.Time { return old.Add(time.Duration(i) * time.Second) })
	roots := map[string]tlog.Hash{"ws_a": logOf(t, conn, ch.Database, a), "ws_b": logOf(t, conn, ch.Database, b)}
	sizes := map[string]int64{"ws_a": 1000, "ws_b": 300}

	e := retention.New(conn, ch.Database, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err := e.RunOnce(context.Background())
	require.NoError(t, err)
	waitForMutations(t, conn, ch.Database)
	var leaves uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM "+ch.Database+"."+migrations.LeavesTable+" WHERE workspace_id = 'ws_a'").Scan(&leaves))
	require.EqualValues(t, 401, leaves, "the expired events' leaf rows went with their partitions")

	store := sealer.NewClickHouseStore(conn, ch.Database)
	for ws, root := range roots {
		var n uint64
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM "+ch.Database+"."+migrations.HashesTable+" WHERE workspace_id = ?", ws).Scan(&n))
		require.EqualValues(t, tlog.StoredHashCount(sizes[ws])-510, n, "%s: tile 0 keeps its own hash only", ws)
		got, err := tlog.TreeHash(sizes[ws], store.ReadHashes(context.Background(), ws))
		require.NoError(t, err)
		require.Equal(t, root, got, "%s: the root is unchanged", ws)
	}
	r := store.ReadHashes(context.Background(), "ws_a")
	for _, i := range []int64{300, 600, 999} {
		row := migrations.RowOf(&a[i])
		p, err := tlog.ProveRecord(1000, i, r)
		require.NoError(t, err, "live leaf %d", i)
		require.NoError(t, tlog.CheckRecord(p, 1000, roots["ws_a"], i, leaf.Hash(&row)))
	}
	_, err = tlog.ProveRecord(1000, 5, r)
	require.Error(t, err, "an expired tile's leaves are no longer provable")
	for _, n := range []int64{256, 512, 700} {
		p, err := tlog.ProveTree(1000, n, r)
		require.NoError(t, err, "consistency from %d", n)
		old, err := tlog.TreeHash(n, r)
		require.NoError(t, err)
		require.NoError(t, tlog.CheckTree(p, 1000, roots["ws_a"], n, old))
	}

	again, err := e.ReduceLog(context.Background())
	require.NoError(t, err)
	require.Empty(t, again, "nothing left to delete")
}

// TestBytesKeptPerExpiredEvent measures what the log keeps of expired
// events (realistic ones, from the load generator) against what the events
// themselves took (compressed column data, system.parts): in the interim
// (leaf rows gone, the tiles' hashes not yet reduced) and once their tiles
// expired; the latter must stay under 1%.
func TestBytesKeptPerExpiredEvent(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	const n = 100 * 256
	old := time.Now().UTC().Add(-100 * 24 * time.Hour)
	logOf(t, conn, ch.Database, events(t, "ws_m", n, func(i int) time.Time { return old.Add(time.Duration(i) * time.Second) }))
	skey, _, err := note.GenerateKey(rand.Reader, "audittrail.example.com")
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	noted, err := sealer.NoteTiles(context.Background(), sealer.NewClickHouseStore(conn, ch.Database), signer, "audittrail.example.com", "ws_m", n, 0)
	require.NoError(t, err)
	require.Equal(t, n/256, noted)
	for _, table := range []string{migrations.Table, migrations.LeavesTable, migrations.HashesTable, migrations.TileTimesTable, migrations.TileNewestTable} {
		require.NoError(t, conn.Exec(context.Background(), "OPTIMIZE TABLE "+ch.Database+"."+table+" FINAL"))
	}
	bytes := func(table string) float64 {
		var b uint64
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT sum(data_compressed_bytes) FROM system.parts WHERE database = ? AND table = ? AND active",
			ch.Database, table).Scan(&b))
		return float64(b)
	}
	eventsBytes, leavesBytes, hashesBytes := bytes(migrations.Table), bytes(migrations.LeavesTable), bytes(migrations.HashesTable)
	timesBytes, newestBytes := bytes(migrations.TileTimesTable), bytes(migrations.TileNewestTable)

	e := retention.New(conn, ch.Database, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err = e.RunOnce(context.Background())
	require.NoError(t, err)
	waitForMutations(t, conn, ch.Database)
	// Once the tiles expired: their own hashes and their newest notes (the
	// times notes went with their weeks). In the interim (leaf rows gone,
	// tiles not reduced): the stored hashes and both notes.
	kept := bytes(migrations.HashesTable) + bytes(migrations.LeavesTable) + bytes(migrations.TileTimesTable) + bytes(migrations.TileNewestTable)
	interim := hashesBytes + timesBytes + newestBytes
	t.Logf("per event: events %.1f B, leaf row %.1f B, stored hashes %.1f B, tile notes %.2f B (times) + %.2f B (newest); per expired event kept: interim %.1f B (%.1f%% of the event), after its tile expired %.2f B (%.2f%%)",
		eventsBytes/n, leavesBytes/n, hashesBytes/n, timesBytes/n, newestBytes/n, interim/n, 100*interim/eventsBytes, kept/n, 100*kept/eventsBytes)
	require.Less(t, kept/eventsBytes, 0.01, "at most 1%% of the expired events' stored bytes")
}
