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

// keysIn adds the (timestamp, id) of every event line of an archive file
// to seen. The file is not verified: it tells what is already archived.
func keysIn(path string, seen map[key]bool) error {
	r, err := archivefile.Open(path)
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
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
