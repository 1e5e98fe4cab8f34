package verify

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/manifest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const origin = "audittrail.test"

var base = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func testRow(i int) migrations.Row {
	ts := base.Add(time.Duration(i) * time.Minute)
	return migrations.Row{WorkspaceID: "ws_1", Timestamp: ts, TimestampNs: ts.UnixNano(), ID: fmt.Sprintf("evt_%03d", i),
		Event: "Source Created", Category: "sources", ActorType: "user", ActorID: "usr_1", Changes: "{}",
		Properties: `{"n":` + fmt.Sprint(i) + `}`, ReceivedAt: ts, ReceivedAtNs: ts.UnixNano()}
}

// fixture is a log of n rows, its rows in the store and its key.
type fixture struct {
	log  *logtest.Log
	rows []migrations.Row
	key  logtest.Key
	vs   note.Verifiers
	// mkey signs manifests; mvs verifies them.
	mkey logtest.Key
	mvs  note.Verifiers
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	k, err := logtest.NewKey(origin)
	require.NoError(t, err)
	vs, err := Verifiers([]string{k.Verifier})
	require.NoError(t, err)
	mk, err := logtest.NewKey("manifests.test")
	require.NoError(t, err)
	mvs, err := Verifiers([]string{mk.Verifier})
	require.NoError(t, err)
	f := &fixture{log: logtest.New(origin, "ws_1"), key: k, vs: vs, mkey: mk, mvs: mvs}
	for i := range n {
		r := testRow(i)
		f.rows = append(f.rows, r)
		f.log.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
	}
	_, err = f.log.Sign(k, base)
	require.NoError(t, err)
	return f
}

// source serves a fixture's log and rows as ClickHouse would.
type source struct {
	logSource
	rows []migrations.Row
}

type logSource interface {
	LeafIndexes(ctx context.Context, workspaceID string, keys []store.Key, size int64) (map[store.Key]int64, error)
	LatestCheckpoint(ctx context.Context, workspaceID string) (store.Checkpoint, error)
	Leaves(ctx context.Context, workspaceID string, from, to int64, fn func(store.Leaf) error) error
	HashReader(ctx context.Context, workspaceID string) tlog.HashReader
	TileNotes(ctx context.Context, workspaceID string) (store.TileNotes, error)
}

func (s source) Rows(_ context.Context, _ string, fn func(r *migrations.Row) error) error {
	for i := range s.rows {
		if err := fn(&s.rows[i]); err != nil {
			return err
		}
	}
	return nil
}

func (f *fixture) online(t *testing.T, rows []migrations.Row, trusted *Checkpoint, cut int64) Report {
	t.Helper()
	return f.onlineWith(t, rows, OnlineOptions{Trusted: trusted, RetentionCut: cut})
}

// onlineWith runs Online with the fixture's workspace and keys; rows
// received up to base+1000h are "now" (a row without a leaf is a problem
// unless received after UnsealedAfter).
func (f *fixture) onlineWith(t *testing.T, rows []migrations.Row, o OnlineOptions) Report {
	t.Helper()
	o.WorkspaceID, o.Known, o.Origin = "ws_1", f.vs, origin
	if o.ReceivedBy == 0 {
		o.UnsealedAfter, o.ReceivedBy = base.Add(1000*time.Hour).UnixNano(), base.Add(1001*time.Hour).UnixNano()
	}
	rep, err := Online(context.Background(), source{f.log, rows}, o)
	require.NoError(t, err)
	return rep
}

func TestOnlineNamesEachTamperedRow(t *testing.T) {
	f := newFixture(t, 300)
	rep := f.online(t, f.rows, nil, 0)
	require.Empty(t, rep.Problems)
	require.Equal(t, 300, rep.Checked)

	rows := append([]migrations.Row(nil), f.rows...)
	rows[10].ActorID = "usr_evil"          // altered
	rows = append(rows[:20], rows[21:]...) // evt_020 removed
	forged := testRow(999)                 // inserted without a leaf
	rows = append(rows, forged)
	rep = f.online(t, rows, nil, 0)
	require.Len(t, rep.Problems, 4, rep.Problems)
	joined := strings.Join(rep.Problems, "\n")
	require.Contains(t, joined, "row evt_010 (leaf 10): altered")
	require.Contains(t, joined, "row evt_020 (leaf 20): missing: the store no longer holds its event (removed, or expired by retention: not provable)")
	require.Contains(t, joined, "row evt_999 (timestamp")
	require.Contains(t, joined, "present without a leaf")
	require.Contains(t, joined, "does not match checkpoint 300") // the altered row changes the root
}

func TestOnlineLeavesWithoutRowsAreProblemsUnlessAssumed(t *testing.T) {
	f := newFixture(t, 600)
	// The first 2 tiles' events and a backdated one are gone with their
	// leaf rows (as retention drops them); the stored hashes are kept.
	var dropped []int64
	for i := range 512 {
		dropped = append(dropped, int64(i))
	}
	dropped = append(dropped, 590)
	f.log.Drop(dropped...)
	live := append(append([]migrations.Row(nil), f.rows[512:590]...), f.rows[591:]...)
	// Nothing authenticated says they expired: by default each is a problem.
	rep := f.online(t, live, nil, 0)
	require.Equal(t, []string{"513 leaves: missing with their leaf rows (removed, or expired by retention: not provable)"}, rep.Problems)
	// With -assume-retention, leaves without leaf rows count as expired.
	assume := OnlineOptions{AssumeRetention: true}
	rep = f.onlineWith(t, live, assume)
	require.Empty(t, rep.Problems)
	require.Equal(t, []string{"513 leaves expired by retention (assumed: -assume-retention; not authenticated)"}, rep.Notes)
	// A leaf row of a live event without its row is missing...
	rep = f.onlineWith(t, live[1:], assume)
	require.Equal(t, []string{"row evt_512 (leaf 512): missing: the store no longer holds its event (removed, or expired by retention: not provable)"}, rep.Problems)
	// ... unless, assumed, its event is past the retention cut.
	assume.RetentionCut = f.rows[513].TimestampNs
	rep = f.onlineWith(t, live[1:], assume)
	require.Empty(t, rep.Problems)
}

// A live row deleted with its leaf row is not taken for an expiry, even
// against a checkpoint held outside ClickHouse whose root still matches.
func TestOnlineDeletionIsNotHiddenAsExpiry(t *testing.T) {
	f := newFixture(t, 300)
	trusted := must(OpenCheckpoint([]byte(must(f.log.LatestCheckpoint(context.Background(), "ws_1")).Note), f.vs, origin))
	rows := append(append([]migrations.Row(nil), f.rows[:50]...), f.rows[51:]...)
	f.log.Drop(50)
	rep := f.online(t, rows, &trusted, 0)
	require.Equal(t, []string{"1 leaves: missing with their leaf rows (removed, or expired by retention: not provable)"}, rep.Problems)
}

// A row without a leaf received in the future is not "not sealed yet".
func TestOnlineFutureReceivedRowsAreProblems(t *testing.T) {
	f := newFixture(t, 300)
	trusted := must(OpenCheckpoint([]byte(must(f.log.LatestCheckpoint(context.Background(), "ws_1")).Note), f.vs, origin))
	rows := append([]migrations.Row(nil), f.rows...)
	future := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	rows[10].ActorID, rows[10].ReceivedAtNs = "usr_evil", future
	f.log.Drop(10)
	forged := testRow(999)
	forged.ReceivedAtNs = future
	rows = append(rows, forged)
	rep := f.online(t, rows, &trusted, 0)
	joined := strings.Join(rep.Problems, "\n")
	require.Contains(t, joined, "row evt_010 (timestamp")
	require.Contains(t, joined, "row evt_999 (timestamp")
	require.Contains(t, joined, "present without a leaf")
	require.Contains(t, joined, "1 leaves: missing with their leaf rows")
	// Received within the grace period, it is a note...
	recent := testRow(998)
	recent.ReceivedAtNs = base.Add(1000*time.Hour + time.Minute).UnixNano()
	withRecent := append(append([]migrations.Row(nil), f.rows[:10]...), append(f.rows[11:], recent)...)
	rep = f.online(t, withRecent, &trusted, 0)
	require.Equal(t, []string{"1 recent rows not sealed yet (the sealer's lag was not checked, or not 0)"}, rep.Notes)
	// ... unless the sealer has caught up with Kafka since the rows were
	// read: then it never came through Kafka.
	caughtUp := func(context.Context) (bool, error) { return true, nil }
	rep = f.onlineWith(t, withRecent, OnlineOptions{Trusted: &trusted, CaughtUp: caughtUp})
	require.Contains(t, strings.Join(rep.Problems, "\n"), "row evt_998 (timestamp")
	require.Contains(t, strings.Join(rep.Problems, "\n"), "(the sealer had sealed everything on Kafka)")
}

// A trusted checkpoint older than ClickHouse's latest: the rows sealed
// since are checked against the latest, which must extend the trusted one.
func TestOnlineOlderTrustedCheckpoint(t *testing.T) {
	f := newFixture(t, 300)
	trusted := must(OpenCheckpoint([]byte(must(f.log.LatestCheckpoint(context.Background(), "ws_1")).Note), f.vs, origin))
	rows := append([]migrations.Row(nil), f.rows...)
	for i := 300; i < 310; i++ {
		r := testRow(i)
		rows = append(rows, r)
		f.log.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
	}
	_, err := f.log.Sign(f.key, base)
	require.NoError(t, err)
	rep := f.online(t, rows, &trusted, 0)
	require.Empty(t, rep.Problems)
	require.Equal(t, 310, rep.Checked)
	// A later checkpoint over a rewritten history does not extend the
	// trusted one.
	rows[5].ActorID = "usr_evil"
	forged := logtest.New(origin, "ws_1")
	for i := range rows {
		forged.Append(rows[i].TimestampNs, rows[i].ID, leaf.Hash(&rows[i]))
	}
	_, err = forged.Sign(f.key, base)
	require.NoError(t, err)
	rep, err = Online(context.Background(), source{forged, rows}, OnlineOptions{WorkspaceID: "ws_1", Known: f.vs, Origin: origin,
		Trusted: &trusted, ReceivedBy: base.Add(1001 * time.Hour).UnixNano(), UnsealedAfter: base.Add(1000 * time.Hour).UnixNano()})
	require.NoError(t, err)
	require.Len(t, rep.Problems, 1, rep.Problems)
	require.Contains(t, rep.Problems[0], "does not match checkpoint 300")
}

func TestOnlineStrongAttackerNeedsOutsideCheckpoint(t *testing.T) {
	f := newFixture(t, 40)
	trusted, err := OpenCheckpoint([]byte(must(f.log.LatestCheckpoint(context.Background(), "ws_1")).Note), f.vs, origin)
	require.NoError(t, err)
	// The attacker rewrites row 7 and rebuilds leaves and stored hashes:
	// ClickHouse is self-consistent, and its checkpoint row keeps the old
	// signed note (the attacker has no key).
	rows := append([]migrations.Row(nil), f.rows...)
	rows[7].ActorID = "usr_evil"
	forged := logtest.New(origin, "ws_1")
	for i := range rows {
		forged.Append(rows[i].TimestampNs, rows[i].ID, leaf.Hash(&rows[i]))
	}
	rep, err := Online(context.Background(), source{&checkpointOf{forged, f.log}, rows}, OnlineOptions{WorkspaceID: "ws_1",
		Known: f.vs, Origin: origin, Trusted: &trusted, ReceivedBy: base.Add(1001 * time.Hour).UnixNano()})
	require.NoError(t, err)
	require.Len(t, rep.Problems, 1, rep.Problems)
	require.Contains(t, rep.Problems[0], "does not match checkpoint 40")
}

// checkpointOf serves log's leaves and hashes with cps' checkpoints.
type checkpointOf struct {
	*logtest.Log
	cps *logtest.Log
}

func (c *checkpointOf) LatestCheckpoint(ctx context.Context, ws string) (store.Checkpoint, error) {
	return c.cps.LatestCheckpoint(ctx, ws)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestOpenCheckpointRefusesOtherKeys(t *testing.T) {
	f := newFixture(t, 3)
	other, err := logtest.NewKey(origin)
	require.NoError(t, err)
	cp, err := f.log.Sign(other, base)
	require.NoError(t, err)
	_, err = OpenCheckpoint([]byte(cp.Note), f.vs, origin)
	require.ErrorContains(t, err, "unknown key")
	good := must(f.log.CheckpointAt(context.Background(), "ws_1", 3))
	_, err = OpenCheckpoint([]byte(good.Note), f.vs, "another.origin")
	require.ErrorIs(t, err, ErrBadCheckpoint)
	opened, err := OpenCheckpoint([]byte(good.Note), f.vs, origin)
	require.NoError(t, err)
	require.Equal(t, Checkpoint{Origin: origin, WorkspaceID: "ws_1", Size: 3, Root: good.Root, Note: good.Note, KeyName: origin}, opened)
}

func TestMonitorReportsRollbackAndFork(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 7)
	open := func(l *logtest.Log) Checkpoint {
		cp, err := l.Sign(f.key, base)
		require.NoError(t, err)
		return must(OpenCheckpoint([]byte(cp.Note), f.vs, origin))
	}
	at7 := open(f.log)
	for i := 7; i < 20; i++ {
		r := testRow(i)
		f.log.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
	}
	at20 := open(f.log)
	path := filepath.Join(t.TempDir(), "state.json")
	s := must(LoadState(path))
	require.Empty(t, s.Observe(ctx, at7, f.log))
	require.Empty(t, s.Observe(ctx, at20, f.log))
	require.NoError(t, s.Save(path))
	s = must(LoadState(path))
	require.Equal(t, int64(20), s.Workspaces["ws_1"].Size)

	require.Contains(t, s.Observe(ctx, at7, f.log)[0], "rollback: checkpoint of size 7 is smaller than size 20")
	// A fork: another history of the same size, and a larger one that
	// does not extend the history seen.
	other := logtest.New(origin, "ws_1")
	for i := range 25 {
		other.Append(int64(i), fmt.Sprint(i), tlog.RecordHash([]byte(fmt.Sprint("x", i))))
		if i == 19 {
			require.Contains(t, s.Observe(ctx, open(other), other)[0], "fork: checkpoint of size 20 has root")
		}
	}
	require.Contains(t, s.Observe(ctx, open(other), other)[0], "fork: checkpoint of size 25 is not consistent with size 20")
	require.Equal(t, at20.Root, s.Workspaces["ws_1"].Root, "a refused checkpoint leaves the state")
}

// export writes rows as a self-proving export with a manifest built the
// way the API builds it.
func (f *fixture) export(t *testing.T, rows []migrations.Row, refs []manifest.RowRef, rg *manifest.Range, absent []int64) []byte {
	t.Helper()
	cp := must(f.log.LatestCheckpoint(context.Background(), "ws_1"))
	m := manifest.Manifest{WorkspaceID: "ws_1", CreatedAt: base, Query: map[string]any{}, Checkpoint: cp.Note, Rows: refs, Range: rg, Absent: absent}
	var indexes []int64
	for _, r := range refs {
		indexes = append(indexes, r.LeafIndex)
	}
	need := must(manifest.NeededHashes(cp.Size, indexes))
	hs := must(f.log.HashReader(context.Background(), "ws_1").ReadHashes(need))
	for i, x := range need {
		m.Hashes = append(m.Hashes, manifest.StoredHash{Index: x, Hash: hs[i]})
	}
	var buf bytes.Buffer
	for i := range rows {
		b := must(json.Marshal(manifest.LineOf(&rows[i])))
		buf.Write(append(b, '\n'))
	}
	signed := must(m.Sign(f.mkey.Signer))
	b := must(json.Marshal(manifest.Closing{Manifest: string(signed)}))
	buf.Write(append(b, '\n'))
	return buf.Bytes()
}

func refsOf(rows []migrations.Row, first int64) []manifest.RowRef {
	var out []manifest.RowRef
	for i, r := range rows {
		out = append(out, manifest.RowRef{ID: r.ID, TimestampNs: r.TimestampNs, LeafIndex: first + int64(i)})
	}
	return out
}

func TestOfflineChecksExportAndRange(t *testing.T) {
	f := newFixture(t, 300)
	check := func(b []byte) Report {
		rep, err := Offline(bytes.NewReader(b), f.vs, f.mvs, origin)
		require.NoError(t, err)
		return rep
	}
	rows := f.rows[100:160]
	rg := &manifest.Range{From: 100, To: 165}
	good := f.export(t, rows, refsOf(rows, 100), &manifest.Range{From: 100, To: 160}, nil)
	rep := check(good)
	require.Empty(t, rep.Problems)
	require.Equal(t, 60, rep.Checked)
	// Leaves the server lists as absent (their events expired, it may
	// say) are problems: nothing signed proves they expired.
	rep = check(f.export(t, rows, refsOf(rows, 100), rg, []int64{160, 161, 162, 163, 164}))
	require.Len(t, rep.Problems, 5)
	require.Equal(t, "leaf 160: not in the export: its event is absent from the store (removed, or expired by retention: not provable)", rep.Problems[0])
	rows2 := append(append([]migrations.Row(nil), f.rows[100:120]...), f.rows[125:165]...)
	refs := append(refsOf(f.rows[100:120], 100), refsOf(f.rows[125:165], 125)...)
	rep = check(f.export(t, rows2, refs, rg, []int64{120, 121, 122, 123, 124}))
	require.Len(t, rep.Problems, 5, "live leaves listed as absent")

	// An altered row, a dropped row, a forged row and an incomplete range.
	altered := append([]migrations.Row(nil), rows...)
	altered[3].ActorID = "usr_evil"
	rep = check(f.export(t, altered, refsOf(rows, 100), rg, nil))
	joined := strings.Join(rep.Problems, "\n")
	require.Contains(t, joined, "row evt_103 (leaf 103): altered")
	require.Contains(t, joined, "leaf 160: missing from an export claimed complete")

	lines := bytes.SplitAfter(good, []byte("\n"))
	cut := bytes.Join(append(append([][]byte{}, lines[:5]...), lines[6:]...), nil)
	require.Equal(t, []string{"row evt_105 (leaf 105): in the manifest but missing from the export",
		"leaf 105: missing from an export claimed complete for [100, 160)"}, check(cut).Problems)
	forged := must(json.Marshal(manifest.LineOf(&[]migrations.Row{testRow(999)}[0])))
	withForged := append(append(append([]byte{}, forged...), '\n'), good...)
	require.Equal(t, []string{"row evt_999: not in the manifest (added to the export, or altered in its id or timestamp)"}, check(withForged).Problems)
	require.Contains(t, check(bytes.Join(lines[:len(lines)-2], nil)).Problems[0], "no manifest line")

	// A manifest signed by another key is refused, and so is one signed
	// by the checkpoint key: each key verifies its own kind of note.
	other := *f
	other.mkey = must(logtest.NewKey(origin))
	require.Contains(t, check(other.export(t, rows, refsOf(rows, 100), nil, nil)).Problems[0], "manifest refused")
	other.mkey = f.key
	require.Contains(t, check(other.export(t, rows, refsOf(rows, 100), nil, nil)).Problems[0], "manifest refused")
	rep, err := Offline(bytes.NewReader(good), f.vs, f.vs, origin)
	require.NoError(t, err)
	require.Contains(t, rep.Problems[0], "manifest refused")
	require.Error(t, SeparateKeys([]string{f.key.Verifier}, []string{f.mkey.Verifier, f.key.Verifier}))
	require.NoError(t, SeparateKeys([]string{f.key.Verifier}, []string{f.mkey.Verifier}))
}

// An unmerged copy of a row that differs from its leaf is named, and so
// is an id that two leaves name.
func TestOnlineChecksEveryCopyAndEveryID(t *testing.T) {
	f := newFixture(t, 20)
	copyOf := f.rows[4]
	copyOf.ReceivedAtNs++ // a resend with the same timestamp, stored again
	rows := append(append([]migrations.Row(nil), f.rows...), copyOf, f.rows[6])
	rep := f.online(t, rows, nil, 0)
	require.Equal(t, 20, rep.Checked)
	require.Len(t, rep.Problems, 1, rep.Problems)
	require.Contains(t, rep.Problems[0], "row evt_004 (leaf 4): altered: an unmerged copy")

	resend := testRow(3)
	resend.TimestampNs++ // a resend with another timestamp, sealed again
	f.log.Append(resend.TimestampNs, resend.ID, leaf.Hash(&resend))
	_, err := f.log.Sign(f.key, base)
	require.NoError(t, err)
	rep = f.online(t, append(append([]migrations.Row(nil), f.rows...), resend), nil, 0)
	require.Equal(t, []string{"event id evt_003 has 2 leaves [3 20]: an event is one leaf (a resend stored and sealed again?)"}, rep.Problems)
}
