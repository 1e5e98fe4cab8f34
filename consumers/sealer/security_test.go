package sealer

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Tests of what an attacker of the log, or an unlucky deployment, could
// do to it (the security review of the integrity log).

// TestTwoOwnersCannotReuseAnIndex: the old owner of a workspace (after a
// partition move) still holds its log in memory when the new owner
// appended to it: its append is fenced off, and once it reloaded, its next
// leaf takes the next index.
func TestTwoOwnersCannotReuseAnIndex(t *testing.T) {
	st := newMemStore()
	now := func() time.Time { return t0 }
	a, b := newSequencer(st, now), newSequencer(st, now)
	k1 := st.store(row("ws_1", t0, "e1"))
	k2 := st.store(row("ws_1", t0.Add(time.Second), "e2"))
	k3 := st.store(row("ws_1", t0.Add(2*time.Second), "e3"))
	_, err := a.seal(context.Background(), items(k1))
	require.NoError(t, err)
	_, err = b.seal(context.Background(), items(k2))
	require.NoError(t, err)
	_, err = a.seal(context.Background(), items(k3))
	require.ErrorIs(t, err, ErrFenced, "a's log in memory is stale")
	require.Len(t, st.leaves["ws_1"], 2, "nothing stored")
	out, err := a.seal(context.Background(), items(k3))
	require.NoError(t, err)
	require.EqualValues(t, 2, out.Leaves[0].Index)
	checkLog(t, st, [][]Key{{k1, k2, k3}})
}

// TestAnIDGetsOneLeafWhateverItsTimestamp: a second stored version of an
// id (the writer stored it with another timestamp) gets no second leaf,
// whether it is older or newer, in memory or after a restart.
func TestAnIDGetsOneLeafWhateverItsTimestamp(t *testing.T) {
	st := newMemStore()
	now := func() time.Time { return t0 }
	s := newSequencer(st, now)
	_, err := s.seal(context.Background(), items(st.store(row("ws_1", t0, "evt_dup"))))
	require.NoError(t, err)
	for _, at := range []time.Time{t0.Add(-30 * 24 * time.Hour), t0.Add(time.Minute)} {
		out, err := s.seal(context.Background(), items(st.store(row("ws_1", at, "evt_dup"))))
		require.NoError(t, err)
		require.Empty(t, out.Leaves, "at %s", at)
		require.Equal(t, 1, out.Repeats)
	}
	for _, at := range []time.Time{t0.Add(-30 * 24 * time.Hour), t0.Add(time.Hour)} {
		out, err := newSequencer(st, now).seal(context.Background(), items(st.store(row("ws_1", at, "evt_dup"))))
		require.NoError(t, err)
		require.Empty(t, out.Leaves, "restarted, at %s", at)
	}
	two := st.store(row("ws_1", t0.Add(time.Second), "twice"))
	out, err := s.seal(context.Background(), items(two, st.store(row("ws_1", t0.Add(2*time.Second), "twice"))))
	require.NoError(t, err)
	require.Len(t, out.Leaves, 1, "one leaf for an id twice in a batch")
	require.Len(t, st.leaves["ws_1"], 2)
}

// signer returns a checkpoint signer and the anchor that verifies it.
func signer(t *testing.T) (note.Signer, *anchor) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "test.local")
	require.NoError(t, err)
	s, err := note.NewSigner(skey)
	require.NoError(t, err)
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	return s, &anchor{origin: "audittrail.local", verifiers: note.VerifierList(v)}
}

func signCheckpoint(t *testing.T, s note.Signer, tr *tree) migrations.Checkpoint {
	root, err := tr.root()
	require.NoError(t, err)
	text, err := note.Sign(&note.Note{Text: CheckpointText("audittrail.local", tr.ws, tr.size, root)}, s)
	require.NoError(t, err)
	return migrations.Checkpoint{WorkspaceID: tr.ws, Size: uint64(tr.size), Root: string(root[:]), Note: string(text), KeyName: s.Name(), SignedAt: t0}
}

// TestASealerRefusesToExtendARewrittenLog: an attacker alters an event and
// rebuilds the log's tables from the rows, self-consistently. A sealer that
// loads the log checks it against its latest signed checkpoint (in
// ClickHouse or, when the attacker deleted that too, on the checkpoints
// topic) and appends nothing, signs nothing.
func TestASealerRefusesToExtendARewrittenLog(t *testing.T) {
	ctx := context.Background()
	now := func() time.Time { return t0 }
	key, anc := signer(t)
	other, _ := signer(t)
	for _, attack := range []string{"rewrite", "rewrite and delete the checkpoints", "rewrite and sign with another key"} {
		t.Run(attack, func(t *testing.T) {
			st := newMemStore()
			var keys []Key
			for i := range 3 {
				keys = append(keys, st.store(row("ws_1", t0.Add(time.Duration(i)*time.Second), fmt.Sprint("e", i))))
			}
			a := newSequencer(st, now)
			a.anchor = anc
			_, err := a.seal(ctx, items(keys...))
			require.NoError(t, err)
			cp := signCheckpoint(t, key, a.trees["ws_1"])
			require.NoError(t, st.SaveCheckpoints(ctx, []migrations.Checkpoint{cp}))

			r := st.rows[keys[1]]
			r.ActorID = "usr_evil"
			st.rows[keys[1]] = r
			delete(st.hashes, "ws_1")
			delete(st.leaves, "ws_1")
			forger := newSequencer(st, now) // the attacker's own tool: no anchor
			_, err = forger.seal(ctx, items(keys...))
			require.NoError(t, err)
			b := newSequencer(st, now)
			b.anchor = &anchor{origin: anc.origin, verifiers: anc.verifiers}
			switch attack {
			case "rewrite and delete the checkpoints":
				st.checkpoints = nil
				b.anchor.published = func(ws string) ([]byte, bool) { return []byte(cp.Note), ws == "ws_1" }
			case "rewrite and sign with another key":
				st.checkpoints = []migrations.Checkpoint{signCheckpoint(t, other, forger.trees["ws_1"])}
			}
			k3 := st.store(row("ws_1", t0.Add(3*time.Second), "e3"))
			_, err = b.seal(ctx, items(k3))
			require.ErrorIs(t, err, ErrTampered)
			require.Len(t, st.leaves["ws_1"], 3, "nothing appended")
			require.Nil(t, b.trees["ws_1"], "nothing kept to sign")
		})
	}

	// The genuine log, reloaded, passes the check and grows.
	st := newMemStore()
	k := st.store(row("ws_1", t0, "e0"))
	a := newSequencer(st, now)
	a.anchor = anc
	_, err := a.seal(ctx, items(k))
	require.NoError(t, err)
	require.NoError(t, st.SaveCheckpoints(ctx, []migrations.Checkpoint{signCheckpoint(t, key, a.trees["ws_1"])}))
	b := newSequencer(st, now)
	b.anchor = anc
	out, err := b.seal(ctx, items(st.store(row("ws_1", t0.Add(time.Second), "e1"))))
	require.NoError(t, err)
	require.Len(t, out.Leaves, 1)
	require.EqualValues(t, 1, b.trees["ws_1"].signed)
	// Reloaded with a leaf past its checkpoint: the root at the signed size
	// comes from the stored hashes.
	c := newSequencer(st, now)
	c.anchor = anc
	out, err = c.seal(ctx, items(st.store(row("ws_1", t0.Add(2*time.Second), "e2"))))
	require.NoError(t, err)
	require.Len(t, out.Leaves, 1)
}

// TestAStoredRowThatDiffersFromItsRecordIsNotSealed: a row changed in
// ClickHouse between the writer's insert and the sealer's read gets no
// leaf (an alert); a row stored from an identical resend with another
// received_at is sealed.
func TestAStoredRowThatDiffersFromItsRecordIsNotSealed(t *testing.T) {
	st := newMemStore()
	s := newSequencer(st, func() time.Time { return t0 })
	record := row("ws_1", t0, "e1")
	stored := record
	stored.ActorID = "usr_evil"
	k := st.store(stored)
	out, err := s.seal(context.Background(), []Item{{Key: k, Record: &record}})
	require.NoError(t, err)
	require.Equal(t, []Key{k}, out.Mismatches)
	require.Empty(t, out.Leaves)

	record2 := row("ws_1", t0.Add(time.Second), "e2")
	stored2 := record2
	stored2.ReceivedAt, stored2.ReceivedAtNs = t0.Add(-time.Second), t0.Add(-time.Second).UnixNano()
	k2 := st.store(stored2)
	out, err = s.seal(context.Background(), []Item{{Key: k2, Record: &record2}})
	require.NoError(t, err)
	require.Empty(t, out.Mismatches)
	require.Len(t, out.Leaves, 1)
}

// TestAFailedAppendDropsTheLogsItTouched: an error while appending (here a
// right edge missing from memory) leaves no half-decided log in memory.
func TestAFailedAppendDropsTheLogsItTouched(t *testing.T) {
	st := newMemStore()
	s := newSequencer(st, func() time.Time { return t0 })
	_, err := s.seal(context.Background(), items(st.store(row("ws_1", t0, "e1"))))
	require.NoError(t, err)
	clear(s.trees["ws_1"].edge)
	_, err = s.seal(context.Background(), items(st.store(row("ws_1", t0.Add(time.Second), "e2"))))
	require.Error(t, err)
	require.Nil(t, s.trees["ws_1"], "dropped, to be loaded again")
}

// TestIdleSignedLogsLeaveMemory: a log no batch touched for the idle time
// is dropped from memory once every leaf is signed, and loaded again (and
// checked) when its workspace sends again.
func TestIdleSignedLogsLeaveMemory(t *testing.T) {
	st := newMemStore()
	now := t0
	s := newSequencer(st, func() time.Time { return now })
	_, err := s.seal(context.Background(), items(st.store(row("ws_1", t0, "e1")), st.store(row("ws_2", t0, "e1"))))
	require.NoError(t, err)
	s.trees["ws_1"].signed = 1 // ws_2's leaf is not signed yet
	now = now.Add(9 * time.Minute)
	require.Zero(t, s.evictIdle(10*time.Minute))
	now = now.Add(time.Minute)
	require.Equal(t, 1, s.evictIdle(10*time.Minute))
	require.Nil(t, s.trees["ws_1"])
	require.NotNil(t, s.trees["ws_2"], "kept until signed")
	out, err := s.seal(context.Background(), items(st.store(row("ws_1", now, "e2"))))
	require.NoError(t, err)
	require.EqualValues(t, 1, out.Leaves[0].Index)
}
