package retention_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/consumers/sealer"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestVerifyProvesExpiryAfterRetention, on ClickHouse 18.16: a log whose
// events expire out of order (ws_a's leaf 300 arrived backdated among old
// events and is live) gets its tile notes from the rows as stored (the
// sealer's backfill reads and authenticates every time); after the
// retention job, `verify online` counts every expired leaf as expired by
// retention, proven by the notes (the first tile's times note went with
// its week: its newest note proves it), and reports no problem; an event
// deleted inside the window is still missing.
func TestVerifyProvesExpiryAfterRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, ch := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC()
	a, _ := outOfOrder(t)
	root := logOf(t, conn, ch.Database, a)

	skey, vkey, err := note.GenerateKey(rand.Reader, "audittrail.test")
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	known, err := verify.Verifiers([]string{vkey})
	require.NoError(t, err)
	st := sealer.NewClickHouseStore(conn, ch.Database)
	noted, err := sealer.NoteTiles(ctx, st, signer, "audittrail.test", "ws_a", 1000, 0)
	require.NoError(t, err)
	require.Equal(t, 3, noted)
	cp, err := note.Sign(&note.Note{Text: sealer.CheckpointText("audittrail.test", "ws_a", 1000, root)}, signer)
	require.NoError(t, err)
	require.NoError(t, st.SaveCheckpoints(ctx, []migrations.Checkpoint{{WorkspaceID: "ws_a", Size: 1000, Root: string(root[:]), Note: string(cp),
		KeyName: signer.Name(), SignedAt: now.Truncate(time.Second)}}))

	e := retention.New(conn, ch.Database, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err = e.RunOnce(ctx)
	require.NoError(t, err)
	waitForMutations(t, conn, ch.Database)
	var times uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+ch.Database+"."+migrations.TileTimesTable).Scan(&times))
	require.EqualValues(t, 2, times, "tile 0's times went with the week of its newest event")

	o := verify.OnlineOptions{WorkspaceID: "ws_a", Known: known, Origin: "audittrail.test",
		RetentionCut: now.Add(-90 * 24 * time.Hour).UnixNano(), UnsealedAfter: now.UnixNano(), ReceivedBy: now.Add(time.Hour).UnixNano()}
	src := verify.StoreSource{Log: store.NewLog(conn, ch.Database), Events: store.New(conn, ch.Database, 90, time.Now)}
	rep, err := verify.Online(ctx, src, o)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Equal(t, 401, rep.Checked)
	require.Equal(t, []string{"599 leaves expired by retention (their event times, signed in the sealer's tile notes, are older than the window)"}, rep.Notes)

	// A live event deleted (with its leaf row) is no expiry.
	require.NoError(t, conn.Exec(ctx, "ALTER TABLE "+ch.Database+"."+migrations.Table+" DELETE WHERE id = 'ws_a-700'"))
	require.NoError(t, conn.Exec(ctx, "ALTER TABLE "+ch.Database+"."+migrations.LeavesTable+" DELETE WHERE id = 'ws_a-700'"))
	waitForMutations(t, conn, ch.Database)
	rep, err = verify.Online(ctx, src, o)
	require.NoError(t, err)
	require.Equal(t, []string{"1 leaves: missing with their leaf rows (removed, or expired by retention: not provable)"}, rep.Problems)
}
