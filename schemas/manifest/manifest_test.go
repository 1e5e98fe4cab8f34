package manifest

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// A line carries every field the leaf hash covers: the row rebuilt from
// its JSON hashes to the same leaf.
func TestLineKeepsTheLeafHash(t *testing.T) {
	ts := time.Date(2026, 12, 7, 12, 34, 56, 789012345, time.UTC)
	r := migrations.Row{WorkspaceID: "ws", Timestamp: ts.Truncate(time.Second), TimestampNs: ts.UnixNano(), ID: "evt_1",
		Event: "Source Created", Category: "Sources", ActorType: "user", ActorID: "usr_1", ActorName: "Zoë \"Z\"\n",
		ActorEmail: "z@example.com", ResourceType: "source", ResourceID: "src_1", ResourceName: "Web",
		Changes: `{"a":{"old":1,"new":2}}`, ContextIP: "203.0.113.7", ContextUserAgent: "curl", ContextRequestID: "req",
		Properties: `{"x":"\u0000"}`, ReceivedAt: ts.Truncate(time.Second), ReceivedAtNs: ts.UnixNano() + 1,
		SenderCredentialID: "cred", SenderProducer: "billing"}
	b, err := json.Marshal(LineOf(&r))
	require.NoError(t, err)
	var l Line
	require.NoError(t, json.Unmarshal(b, &l))
	back := l.Row()
	require.Equal(t, leaf.Hash(&r), leaf.Hash(&back))
	require.Equal(t, r, back)
	// Every field of the leaf encoding is a key of the line.
	var keys map[string]any
	require.NoError(t, json.Unmarshal(b, &keys))
	for _, f := range leaf.Fields {
		require.Contains(t, keys, f)
	}
}

func TestSignOpen(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "manifests.test")
	require.NoError(t, err)
	s, err := note.NewSigner(skey)
	require.NoError(t, err)
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	m := Manifest{WorkspaceID: "ws", Query: map[string]any{"q": "x"}, Checkpoint: "o/ws\n1\nAAAA\n\n— k sig\n",
		Rows: []RowRef{{ID: "a", TimestampNs: 1, LeafIndex: 0}}, Range: &Range{From: 0, To: 2}, Absent: []int64{1}}
	msg, err := m.Sign(s)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(msg), Header))
	got, err := Open(msg, note.VerifierList(v))
	require.NoError(t, err)
	require.Equal(t, m.Rows, got.Rows)
	require.Equal(t, m.Checkpoint, got.Checkpoint)
	require.Equal(t, m.Absent, got.Absent)

	other, err := note.Sign(&note.Note{Text: "not a manifest\n"}, s)
	require.NoError(t, err)
	_, err = Open(other, note.VerifierList(v))
	require.ErrorIs(t, err, ErrNotManifest)
	_, err = Open(msg[:len(msg)-10], note.VerifierList(v))
	require.Error(t, err)
}

// NeededHashes gives exactly what the proofs read, and about two hashes a
// row for a contiguous range.
func TestNeededHashesRebuildEveryProof(t *testing.T) {
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	const size = 1000
	for i := range int64(size) {
		hs, err := tlog.StoredHashes(i, []byte(fmt.Sprint(i)), r)
		require.NoError(t, err)
		hashes = append(hashes, hs...)
	}
	root, err := tlog.TreeHash(size, r)
	require.NoError(t, err)
	var leaves []int64
	for i := int64(300); i < 700; i++ {
		leaves = append(leaves, i)
	}
	need, err := NeededHashes(size, leaves)
	require.NoError(t, err)
	require.Less(t, len(need), 3*len(leaves))
	m := Manifest{}
	for _, x := range need {
		m.Hashes = append(m.Hashes, StoredHash{Index: x, Hash: hashes[x]})
	}
	for _, n := range leaves {
		p, err := tlog.ProveRecord(size, n, m.Reader())
		require.NoError(t, err)
		require.NoError(t, tlog.CheckRecord(p, size, root, n, tlog.RecordHash([]byte(fmt.Sprint(n)))))
	}
	_, err = NeededHashes(size, []int64{size})
	require.Error(t, err)
	_, err = tlog.ProveRecord(size, 100, m.Reader())
	require.ErrorContains(t, err, "lacks stored hash")
}
