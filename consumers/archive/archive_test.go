package archive_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/consumers/archive"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/store/logtest"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/archivefile"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/manifest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

const origin = "audittrail.test"

var day = time.Date(2025, 3, 9, 0, 0, 0, 0, time.UTC)

func row(ws string, at time.Time, i int) migrations.Row {
	return migrations.Row{WorkspaceID: ws, Timestamp: at.Truncate(time.Second), TimestampNs: at.UnixNano(),
		ID: fmt.Sprintf("evt_%s_%d", at.Format("0102"), i), Event: "Source Created", Category: "Sources",
		ActorType: "user", ActorID: "usr_1", Changes: "{}", Properties: fmt.Sprintf(`{"n":%d}`, i),
		ReceivedAt: at.Truncate(time.Second), ReceivedAtNs: at.UnixNano()}
}

// fakeRows serves rows as ClickHouseRows does: those of the asked day.
type fakeRows struct{ rows []migrations.Row }

func (f *fakeRows) Day(_ context.Context, ws string, d time.Time, fn func(r *migrations.Row) error) error {
	for i := range f.rows {
		r := f.rows[i]
		if r.WorkspaceID == ws && !r.Timestamp.Before(d) && r.Timestamp.Before(d.Add(24*time.Hour)) {
			if err := fn(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

type fixture struct {
	dir    string
	log    *logtest.Log
	rows   *fakeRows
	ck, mk logtest.Key
	a      *archive.Archiver
}

// newFixture logs sealed rows on the day and the next, and one row of
// the day the sealer never saw.
func newFixture(t *testing.T, sealed int) *fixture {
	t.Helper()
	ck, err := logtest.NewKey(origin)
	require.NoError(t, err)
	mk, err := logtest.NewKey("manifests." + origin)
	require.NoError(t, err)
	f := &fixture{dir: t.TempDir(), log: logtest.New(origin, "ws_1"), rows: &fakeRows{}, ck: ck, mk: mk}
	for i := range sealed {
		f.seal(row("ws_1", day.Add(time.Duration(i)*time.Hour), i))
		f.seal(row("ws_1", day.Add(24*time.Hour+time.Duration(i)*time.Hour), i))
	}
	f.rows.rows = append(f.rows.rows, row("ws_1", day.Add(23*time.Hour), 99))
	_, err = f.log.Sign(ck, day.Add(72*time.Hour))
	require.NoError(t, err)
	f.a, err = archive.New(f.dir, f.rows, f.log, mk.Signer, verifiersOf(t, mk), func() time.Time { return day.Add(100 * 24 * time.Hour) })
	require.NoError(t, err)
	return f
}

func (f *fixture) seal(r migrations.Row) {
	f.log.Append(r.TimestampNs, r.ID, leaf.Hash(&r))
	f.rows.rows = append(f.rows.rows, r)
}

// verifyFile runs the offline verifier on an archive file.
func (f *fixture) verifyFile(t *testing.T, path string) verify.Report {
	t.Helper()
	vs, err := verify.Verifiers([]string{f.ck.Verifier})
	require.NoError(t, err)
	mvs, err := verify.Verifiers([]string{f.mk.Verifier})
	require.NoError(t, err)
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	rep, err := verify.Offline(in, vs, mvs, origin)
	require.NoError(t, err)
	return rep
}

func TestArchiveWritesAVerifiableFilePerDay(t *testing.T) {
	f := newFixture(t, 5)
	require.NoError(t, f.a.Archive(context.Background(), "ws_1", day.Add(5*time.Hour)))

	parts, err := archivefile.Parts(f.dir, "ws_1", day)
	require.NoError(t, err)
	require.Equal(t, []archivefile.Part{
		{Path: filepath.Join(f.dir, "ws_1", "2025", "03", "09.ndjson.gz"), Number: 1},
		{Path: filepath.Join(f.dir, "ws_1", "2025", "03", "09.unsealed.ndjson.gz"), Number: 1, Unsealed: true},
	}, parts)
	rep := f.verifyFile(t, parts[0].Path)
	require.Empty(t, rep.Problems)
	require.Equal(t, 5, rep.Checked, "the day's five sealed rows, not the next day's")

	// The unsealed row is kept, but its file proves nothing.
	require.Contains(t, string(gunzip(t, parts[1].Path)), `"id":"evt_0309_99"`)
	require.NotEmpty(t, f.verifyFile(t, parts[1].Path).Problems)

	// Nothing else in the directory: no temporary file left behind.
	entries, err := os.ReadDir(filepath.Dir(parts[0].Path))
	require.NoError(t, err)
	require.Len(t, entries, 2)
}

func TestArchiveIsIdempotentAndAddsOnlyNewRows(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	require.NoError(t, f.a.Archive(ctx, "ws_1", day))
	first, err := archivefile.Parts(f.dir, "ws_1", day)
	require.NoError(t, err)
	before := gunzip(t, first[0].Path)

	require.NoError(t, f.a.Archive(ctx, "ws_1", day))
	again, err := archivefile.Parts(f.dir, "ws_1", day)
	require.NoError(t, err)
	require.Equal(t, first, again, "nothing new: no file written")
	require.Equal(t, before, gunzip(t, first[0].Path))

	// A late event of the day: a second part with it alone.
	f.seal(row("ws_1", day.Add(90*time.Minute), 7))
	_, err = f.log.Sign(f.ck, day.Add(73*time.Hour))
	require.NoError(t, err)
	require.NoError(t, f.a.Archive(ctx, "ws_1", day))
	parts, err := archivefile.Parts(f.dir, "ws_1", day)
	require.NoError(t, err)
	require.Len(t, parts, 3)
	require.Equal(t, 2, parts[1].Number)
	rep := f.verifyFile(t, parts[1].Path)
	require.Empty(t, rep.Problems)
	require.Equal(t, 1, rep.Checked)
}

// TestPlantedFilesCannotHideEvents: a file someone put in the directory,
// whose manifest is not signed with the archive's key, or an unsealed file
// naming sealed events, does not make the archiver skip them.
func TestPlantedFilesCannotHideEvents(t *testing.T) {
	f := newFixture(t, 3)
	other := newFixture(t, 3) // the same events, archived with another manifest key
	require.NoError(t, other.a.Archive(context.Background(), "ws_1", day))
	month := filepath.Join(f.dir, "ws_1", "2025", "03")
	require.NoError(t, os.MkdirAll(month, 0o700))
	planted := gunzip(t, filepath.Join(other.dir, "ws_1", "2025", "03", "09.ndjson.gz"))
	writeGzip(t, filepath.Join(month, "09.ndjson.gz"), planted)
	writeGzip(t, filepath.Join(month, "09.unsealed.ndjson.gz"), planted)

	require.NoError(t, f.a.Archive(context.Background(), "ws_1", day))
	parts, err := archivefile.Parts(f.dir, "ws_1", day)
	require.NoError(t, err)
	require.Len(t, parts, 4, "the planted two, the day's sealed events again, and the unsealed one")
	require.Equal(t, archivefile.Part{Path: filepath.Join(month, "09.2.ndjson.gz"), Number: 2}, parts[1])
	rep := f.verifyFile(t, parts[1].Path)
	require.Empty(t, rep.Problems)
	require.Equal(t, 3, rep.Checked, "every sealed event of the day, despite the planted files")
}

func TestAlteredArchiveFailsVerification(t *testing.T) {
	f := newFixture(t, 3)
	require.NoError(t, f.a.Archive(context.Background(), "ws_1", day))
	path := filepath.Join(f.dir, "ws_1", "2025", "03", "09.ndjson.gz")
	plain := gunzip(t, path)
	altered := bytes.Replace(plain, []byte(`{\"n\":1}`), []byte(`{\"n\":2}`), 1)
	require.NotEqual(t, plain, altered)
	writeGzip(t, path, altered)
	rep := f.verifyFile(t, path)
	require.Len(t, rep.Problems, 1)
	require.Contains(t, rep.Problems[0], "altered")

	// Another manifest key: the manifest is refused.
	other, err := logtest.NewKey("manifests." + origin)
	require.NoError(t, err)
	f.mk = other
	writeGzip(t, path, plain)
	rep = f.verifyFile(t, path)
	require.Len(t, rep.Problems, 1)
	require.Contains(t, rep.Problems[0], "manifest refused")
}

func TestArchiveRefusesWorkspaceIDsThatLeaveTheDirectory(t *testing.T) {
	f := newFixture(t, 1)
	for _, ws := range []string{"", ".", "..", "../x", "a/b", `a\b`, "/etc", ".hidden", "ws\x00", strings.Repeat("a", 129)} {
		err := f.a.Archive(context.Background(), ws, day)
		require.ErrorIs(t, err, archivefile.ErrWorkspace, "%q", ws)
	}
	entries, err := os.ReadDir(f.dir)
	require.NoError(t, err)
	require.Empty(t, entries)
	_, err = archivefile.PartPath(f.dir, "../../etc", day, archivefile.Part{Number: 1})
	require.ErrorIs(t, err, archivefile.ErrWorkspace)
}

// failingLog fails reading stored hashes.
type failingLog struct{ *logtest.Log }

func (l failingLog) HashReader(context.Context, string) tlog.HashReader {
	return tlog.HashReaderFunc(func([]int64) ([]tlog.Hash, error) { return nil, store.ErrHashMissing })
}

func TestFailedArchiveLeavesNoFile(t *testing.T) {
	f := newFixture(t, 3)
	a, err := archive.New(f.dir, f.rows, failingLog{f.log}, f.mk.Signer, verifiersOf(t, f.mk), nil)
	require.NoError(t, err)
	err = a.Archive(context.Background(), "ws_1", day)
	require.ErrorIs(t, err, store.ErrHashMissing)
	dir := filepath.Join(f.dir, "ws_1", "2025", "03")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "neither the part nor the unsealed file, nor a temporary file")
}

func TestNewRefusesRelativeDirAndMissingSigner(t *testing.T) {
	f := newFixture(t, 1)
	known := verifiersOf(t, f.mk)
	_, err := archive.New("archive", f.rows, f.log, f.mk.Signer, known, nil)
	require.Error(t, err)
	_, err = archive.New(f.dir, f.rows, f.log, nil, known, nil)
	require.Error(t, err)
	_, err = archive.New(f.dir, f.rows, f.log, f.mk.Signer, nil, nil)
	require.Error(t, err, "no verifier keys")
	_, err = archive.New(f.dir, f.rows, f.log, f.mk.Signer, verifiersOf(t, f.ck), nil)
	require.ErrorContains(t, err, "lack the signing key's")
	var s note.Signer = f.mk.Signer
	_, err = archive.New(f.dir, f.rows, f.log, s, known, nil)
	require.NoError(t, err)
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	in, err := os.Open(path)
	require.NoError(t, err)
	defer in.Close()
	zr, err := gzip.NewReader(in)
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	return b
}

func writeGzip(t *testing.T, path string, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o600))
}

// verifiersOf returns the verifiers of a key.
func verifiersOf(t testing.TB, k logtest.Key) note.Verifiers {
	t.Helper()
	vs, err := verify.Verifiers([]string{k.Verifier})
	require.NoError(t, err)
	return vs
}

// TestOnlyThisDaysArchiveManifestsCount: an owner's export signed with the
// same key (no archive_day), or the archive of another day copied under
// this day's name, does not count as this day's archive.
func TestOnlyThisDaysArchiveManifestsCount(t *testing.T) {
	f := newFixture(t, 3)
	month := filepath.Join(f.dir, "ws_1", "2025", "03")
	require.NoError(t, os.MkdirAll(month, 0o700))

	// An export of the day's sealed rows, signed with the archive's key.
	m := manifest.Manifest{WorkspaceID: "ws_1", Query: map[string]any{"since": "2025-03-09T00:00:00Z"}, Rows: []manifest.RowRef{}}
	var plain bytes.Buffer
	cp, err := f.log.LatestCheckpoint(context.Background(), "ws_1")
	require.NoError(t, err)
	m.Checkpoint = cp.Note
	for _, lf := range f.log.AllLeaves() {
		for _, r := range f.rows.rows {
			if r.ID == lf.ID && !r.Timestamp.Before(day) && r.Timestamp.Before(day.Add(24*time.Hour)) {
				m.Rows = append(m.Rows, manifest.RowRef{ID: r.ID, TimestampNs: r.TimestampNs, LeafIndex: lf.Index})
				b, err := json.Marshal(manifest.LineOf(&r))
				require.NoError(t, err)
				plain.Write(append(b, '\n'))
			}
		}
	}
	require.Len(t, m.Rows, 3)
	signed, err := m.Sign(f.mk.Signer)
	require.NoError(t, err)
	b, err := json.Marshal(manifest.Closing{Manifest: string(signed)})
	require.NoError(t, err)
	plain.Write(append(b, '\n'))
	writeGzip(t, filepath.Join(month, "09.ndjson.gz"), plain.Bytes())

	require.NoError(t, f.a.Archive(context.Background(), "ws_1", day))
	second := filepath.Join(month, "09.2.ndjson.gz")
	rep := f.verifyFile(t, second)
	require.Empty(t, rep.Problems)
	require.Equal(t, 3, rep.Checked, "the export did not count as the archive")

	// The next day's archive copied under this day's next part name.
	require.NoError(t, f.a.Archive(context.Background(), "ws_1", day.Add(24*time.Hour)))
	next, err := os.ReadFile(filepath.Join(month, "10.ndjson.gz"))
	require.NoError(t, err)
	require.NoError(t, os.Remove(second))
	require.NoError(t, os.WriteFile(second, next, 0o600))
	require.NoError(t, f.a.Archive(context.Background(), "ws_1", day))
	rep = f.verifyFile(t, filepath.Join(month, "09.3.ndjson.gz"))
	require.Empty(t, rep.Problems)
	require.Equal(t, 3, rep.Checked, "another day's archive did not count either")
}

// racingRows completes the day's first part (as another writer would)
// while the archiver reads the day's rows.
type racingRows struct {
	*fakeRows
	path string
}

func (r racingRows) Day(ctx context.Context, ws string, d time.Time, fn func(r *migrations.Row) error) error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(r.path, []byte("another writer's part"), 0o600); err != nil {
		return err
	}
	return r.fakeRows.Day(ctx, ws, d, fn)
}

func TestAPartIsNeverReplaced(t *testing.T) {
	f := newFixture(t, 2)
	path := filepath.Join(f.dir, "ws_1", "2025", "03", "09.ndjson.gz")
	a, err := archive.New(f.dir, racingRows{f.rows, path}, f.log, f.mk.Signer, verifiersOf(t, f.mk), nil)
	require.NoError(t, err)
	err = a.Archive(context.Background(), "ws_1", day)
	require.ErrorIs(t, err, archive.ErrPartExists)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "another writer's part", string(b))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left, and the unsealed file not committed either")
}
