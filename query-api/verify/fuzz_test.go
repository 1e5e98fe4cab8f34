package verify

import (
	"bytes"
	"testing"
	"time"

	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/schemas/manifest"
	"github.com/segmentio/encoding/json"
	"golang.org/x/mod/sumdb/tlog"
)

// FuzzOffline: any file given as an export is reported on, never a panic.
func FuzzOffline(f *testing.F) {
	k, err := logtest.NewKey(origin)
	if err != nil {
		f.Fatal(err)
	}
	vs, err := Verifiers([]string{k.Verifier})
	if err != nil {
		f.Fatal(err)
	}
	mk, err := logtest.NewKey("manifests.test")
	if err != nil {
		f.Fatal(err)
	}
	mvs, err := Verifiers([]string{mk.Verifier})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"id":"a","workspace_id":"w"}` + "\n" + `{"manifest":"x\n\n— k AAAA\n"}` + "\n"))
	f.Add([]byte(`{"manifest":"audittrail-export-manifest/v1\n{\"rows\":[{\"leaf_index\":-1}],\"range\":{\"from\":5,\"to\":1}}\n"}`))
	f.Add([]byte("\n\n{}\n[1,2]\nnull\n"))
	// Signed manifests with hostile content: a huge range, negative and
	// out-of-tree leaf indexes, a checkpoint that is not one.
	l := logtest.New(origin, "w")
	l.Append(1, "a", tlog.RecordHash([]byte("a")))
	cp, err := l.Sign(k, time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []manifest.Manifest{
		{WorkspaceID: "w", Checkpoint: cp.Note, Range: &manifest.Range{From: 0, To: 1 << 62}},
		{WorkspaceID: "w", Checkpoint: cp.Note, Rows: []manifest.RowRef{{ID: "a", TimestampNs: 1, LeafIndex: -1}, {ID: "b", LeafIndex: 1 << 62}}},
		{WorkspaceID: "w", Checkpoint: "w\n1\n", Rows: []manifest.RowRef{{ID: "a"}}},
	} {
		signed, err := m.Sign(mk.Signer)
		if err != nil {
			f.Fatal(err)
		}
		closing, _ := json.Marshal(manifest.Closing{Manifest: string(signed)})
		f.Add(append([]byte(`{"id":"a","workspace_id":"w","timestamp_ns":1}`+"\n"), closing...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Offline(bytes.NewReader(b), vs, mvs, origin)
		_, _ = OpenCheckpoint(b, vs, "")
	})
}
