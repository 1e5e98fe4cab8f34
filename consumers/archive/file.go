package archive

// One archive file written atomically: gzip into a temporary file in the
// same directory, fsync, rename over the final name, fsync the directory.
// A crash leaves either no file or the whole file, never part of one.

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"

	"github.com/segmentio/encoding/json"
	"golang.org/x/mod/sumdb/note"

	"github.com/audittrail/audittrail/schemas/archivefile"
	"github.com/audittrail/audittrail/schemas/manifest"
)

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
		err = os.Rename(f.tmp.Name(), f.path)
	}
	if err != nil {
		_ = os.Remove(f.tmp.Name())
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

// keysIn adds to seen the (timestamp, id) of the events an archive file
// already holds. For a sealed part these are the rows its manifest names,
// and only when the manifest's signature verifies with known: a file
// planted in the directory cannot make the archiver skip events (they
// would then be deleted unarchived). An unsealed file has no signature;
// its lines only keep rows without a leaf from being written there again.
func keysIn(path string, unsealed bool, known note.Verifiers, seen map[key]bool) error {
	r, err := archivefile.Open(path)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		if !unsealed {
			var c manifest.Closing
			if json.Unmarshal(sc.Bytes(), &c) == nil && c.Manifest != "" {
				m, err := manifest.Open([]byte(c.Manifest), known)
				if err != nil {
					return nil // not ours: its rows count as not archived
				}
				for _, ref := range m.Rows {
					seen[key{ref.TimestampNs, ref.ID}] = true
				}
			}
			continue
		}
		var l manifest.Line
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.ID != "" {
			seen[key{l.TimestampNs, l.ID}] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read archive %s: %w", path, err)
	}
	return nil
}
