package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/manifest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// export writes a one-row self-proving export and returns its path and
// the checkpoint and manifest verifier keys.
func export(t *testing.T, actor string) (string, string, string) {
	t.Helper()
	k, err := logtest.NewKey("audittrail.local")
	require.NoError(t, err)
	mk, err := logtest.NewKey("manifests.local")
	require.NoError(t, err)
	row := migrations.Row{WorkspaceID: "ws_1", TimestampNs: 5, ID: "evt_1", ActorID: "usr_1", Changes: "{}", Properties: "{}"}
	l := logtest.New("audittrail.local", "ws_1")
	l.Append(row.TimestampNs, row.ID, leaf.Hash(&row))
	cp, err := l.Sign(k, time.Unix(0, 0))
	require.NoError(t, err)
	m := manifest.Manifest{WorkspaceID: "ws_1", Checkpoint: cp.Note, Rows: []manifest.RowRef{{ID: "evt_1", TimestampNs: 5}}}
	signed, err := m.Sign(mk.Signer)
	require.NoError(t, err)
	row.ActorID = actor
	line, _ := json.Marshal(manifest.LineOf(&row))
	closing, _ := json.Marshal(manifest.Closing{Manifest: string(signed)})
	path := filepath.Join(t.TempDir(), "export.ndjson")
	require.NoError(t, os.WriteFile(path, bytes.Join([][]byte{line, closing, nil}, []byte("\n")), 0o600))
	return path, k.Verifier, mk.Verifier
}

func TestExitStatus(t *testing.T) {
	ctx := context.Background()
	good, key, mkey := export(t, "usr_1")
	require.Equal(t, 0, run(ctx, []string{"offline", "-export", good, "-keys", key, "-manifest-keys", mkey}))
	altered, key2, mkey2 := export(t, "usr_2")
	require.Equal(t, 1, run(ctx, []string{"offline", "-export", altered, "-keys", key2, "-manifest-keys", mkey2}))
	require.Equal(t, 1, run(ctx, []string{"offline", "-export", good, "-keys", key2, "-manifest-keys", mkey}), "another checkpoint key")
	require.Equal(t, 1, run(ctx, []string{"offline", "-export", good, "-keys", key, "-manifest-keys", mkey2}), "another manifest key")
	require.Equal(t, 2, run(ctx, []string{"offline", "-export", good, "-keys", key, "-manifest-keys", mkey + "," + key}), "a key of both kinds")
	for _, args := range [][]string{
		nil, {"nope"}, {"offline"}, {"offline", "-export", good, "-keys", "not-a-key", "-manifest-keys", mkey},
		{"offline", "-export", good, "-keys", key, "-manifest-keys", "not-a-key"},
		{"offline", "-export", filepath.Join(t.TempDir(), "missing"), "-keys", key},
		{"online", "-keys", key}, {"online", "-workspace", "ws_1", "-keys", key, "-trusted", "elsewhere"},
		{"online", "-workspace", "ws_1", "-keys", key, "-retention-days", "3651"}, {"online", "-workspace", "ws_1", "-keys", key, "-retention-days", "-1"},
		{"monitor", "-keys", key}, {"monitor", "-state", "s.json", "-keys", key},
	} {
		require.Equal(t, 2, run(ctx, args), "%v", args)
	}
}

// gzipped writes the content of path gzip-compressed beside it, as an
// archive file (consumers/archive) is.
func gzipped(t *testing.T, path string) string {
	t.Helper()
	plain, err := os.ReadFile(path)
	require.NoError(t, err)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err = zw.Write(plain)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	out := path + ".gz"
	require.NoError(t, os.WriteFile(out, buf.Bytes(), 0o600))
	return out
}

func TestOfflineReadsArchiveFiles(t *testing.T) {
	ctx := context.Background()
	good, key, mkey := export(t, "usr_1")
	require.Equal(t, 0, run(ctx, []string{"offline", "-export", gzipped(t, good), "-keys", key, "-manifest-keys", mkey}))
	altered, key2, mkey2 := export(t, "usr_2")
	require.Equal(t, 1, run(ctx, []string{"offline", "-export", gzipped(t, altered), "-keys", key2, "-manifest-keys", mkey2}))

	// A gzip file cut short: an error (exit 2), never an OK.
	gz, err := os.ReadFile(gzipped(t, good))
	require.NoError(t, err)
	cut := filepath.Join(t.TempDir(), "cut.ndjson.gz")
	require.NoError(t, os.WriteFile(cut, gz[:len(gz)/2], 0o600))
	require.NotEqual(t, 0, run(ctx, []string{"offline", "-export", cut, "-keys", key, "-manifest-keys", mkey}))
}
