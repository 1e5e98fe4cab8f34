package archive

// One archive file written atomically: gzip into a temporary file in the
// same directory, fsync, hard-link it to the final name (which fails when
// that name exists: a file is never replaced), fsync the directory. A
// crash leaves either no file or the whole file, never part of one.

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/segmentio/encoding/json"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/schemas/archivefile"
	"github.com/audittrail/audittrail/schemas/manifest"
)

// ErrPartExists is returned when another writer completed the same part
// of a day meanwhile; nothing of that day is deleted before a later call
// archived it.
var ErrPartExists = errors.New("the archive part exists already (archived meanwhile by another writer)")

// file is an archive file being written.
type file struct {
	path string
	tmp  *os.File
	buf  *bufio.Writer
	gz   *gzip.Writer
}

// create starts the file at path (its directory is made, private to the
// writer's user).
func create(path string) (*file, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create archive directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create archive file: %w", err)
	}
	f := &file{path: path, tmp: tmp, buf: bufio.NewWriterSize(tmp, 256<<10)}
	f.gz = gzip.NewWriter(f.buf)
	return f, nil
}

// line writes v as one JSON line.
func (f *file) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode archive line: %w", err)
	}
	if _, err := f.gz.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", f.tmp.Name(), err)
	}
	return nil
}

// commit finishes the file and puts it in place.
func (f *file) commit() error {
	err := f.gz.Close()
	if err == nil {
		err = f.buf.Flush()
	}
	if err == nil {
		err = f.tmp.Sync()
	}
	if cerr := f.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Two writers archiving one day may both choose this part: the
		// second fails here, and archives again at the next run, after
		// reading the first one's file.
		err = os.Link(f.tmp.Name(), f.path)
	}
	_ = os.Remove(f.tmp.Name())
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s", ErrPartExists, f.path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return syncDir(filepath.Dir(f.path))
}

// abort removes the temporary file.
func (f *file) abort() {
	_ = f.tmp.Close()
	_ = os.Remove(f.tmp.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// maxLine bounds one NDJSON line (as verify.MaxLine).
const maxLine = 1 << 20

// keysIn adds to seen the (timestamp, id) of the events a sealed part of
// the workspace's day already holds: the rows its manifest names whose
// line is in the file, and only when the manifest verifies with known and
// is this archive's (the workspace, archive_day and part number; an
// owner's export never has archive_day). A file planted in the directory
// therefore cannot make the archiver skip events that retention would
// then delete unarchived.
func keysIn(p archivefile.Part, workspace string, day time.Time, known note.Verifiers, seen map[key]bool) error {
	r, err := archivefile.Open(p.Path)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	defer r.Close()
	lines := map[key]bool{}
	var m *manifest.Manifest
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		var c manifest.Closing
		if json.Unmarshal(sc.Bytes(), &c) == nil && c.Manifest != "" {
			if m, err = manifest.Open([]byte(c.Manifest), known); err != nil {
				return nil // not ours: its rows count as not archived
			}
			continue
		}
		var l manifest.Line
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.ID != "" && l.WorkspaceID == workspace {
			lines[key{l.TimestampNs, l.ID}] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read archive %s: %w", p.Path, err)
	}
	if m == nil || m.WorkspaceID != workspace || m.Query["archive_day"] != day.Format(time.DateOnly) || m.Query["part"] != float64(p.Number) {
		return nil
	}
	for _, ref := range m.Rows {
		if k := (key{ref.TimestampNs, ref.ID}); lines[k] {
			seen[k] = true
		}
	}
	return nil
}

// looseKeysIn adds to seen the events of an unsealed file. Nothing proves
// such a file, so its keys only keep rows without a leaf from being
// written again (a planted one hides no more than deleting the real one
// would).
func looseKeysIn(path, workspace string, seen map[key]bool) error {
	r, err := archivefile.Open(path)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		var l manifest.Line
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.ID != "" && l.WorkspaceID == workspace {
			seen[key{l.TimestampNs, l.ID}] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read archive %s: %w", path, err)
	}
	return nil
}
