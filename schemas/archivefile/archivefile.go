// Package archivefile is the layout of the archive directory the writer
// fills (consumers/archive) and the admin API restores from: where a
// workspace's day is, and how its files are read.
//
//	<dir>/<workspace_id>/<yyyy>/<mm>/<dd>.ndjson.gz
//
// then <dd>.2.ndjson.gz, ... for more parts of a day, and
// <dd>.unsealed.ndjson.gz (.2, ...) for rows that had no leaf in the log.
// A workspace id never leaves dir: ids that could (a separator, "." or
// "..", anything outside the ids every API accepts) are refused.
package archivefile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/audittrail/audittrail/schemas/manifest"
)

// workspacePattern is the workspace id every API accepts; it has no path
// separator and cannot be "." or "..", so a workspace's directory is
// always a child of the archive directory.
var workspacePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$`)

// ErrWorkspace is returned for a workspace id that is not one.
var ErrWorkspace = errors.New("workspace id must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")

// Ext is the extension of every archive file.
const Ext = ".ndjson.gz"

// Part is one archive file of a workspace's day.
type Part struct {
	Path string
	// Number counts the parts of the day from 1, separately for sealed
	// and unsealed files.
	Number int
	// Unsealed files hold rows without a leaf: kept, but not provable.
	Unsealed bool
}

// DayDir returns the directory of a workspace's month, inside dir.
func DayDir(dir, workspace string, day time.Time) (string, error) {
	if !workspacePattern.MatchString(workspace) {
		return "", fmt.Errorf("%q: %w", workspace, ErrWorkspace)
	}
	day = day.UTC()
	rel := filepath.Join(workspace, fmt.Sprintf("%04d", day.Year()), fmt.Sprintf("%02d", int(day.Month())))
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%q: %w", workspace, ErrWorkspace)
	}
	return filepath.Join(dir, rel), nil
}

// PartPath returns the path of a part of a workspace's day.
func PartPath(dir, workspace string, day time.Time, p Part) (string, error) {
	d, err := DayDir(dir, workspace, day)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%02d", day.UTC().Day())
	if p.Unsealed {
		name += ".unsealed"
	}
	if p.Number > 1 {
		name += "." + strconv.Itoa(p.Number)
	}
	return filepath.Join(d, name+Ext), nil
}

// partName matches the file names of one day's parts.
var partName = regexp.MustCompile(`^(\d\d)(\.unsealed)?(?:\.([2-9]|[1-9]\d{1,5}))?\.ndjson\.gz$`)

// Parts lists the archive files of a workspace's day, sealed ones first,
// each kind in part order; none when nothing was archived.
func Parts(dir, workspace string, day time.Time) ([]Part, error) {
	d, err := DayDir(dir, workspace, day)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(d)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list archive %s: %w", d, err)
	}
	var out []Part
	for _, e := range entries {
		m := partName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() || m[1] != fmt.Sprintf("%02d", day.UTC().Day()) {
			continue
		}
		p := Part{Path: filepath.Join(d, e.Name()), Number: 1, Unsealed: m[2] != ""}
		if m[3] != "" {
			p.Number, _ = strconv.Atoi(m[3])
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Unsealed != out[j].Unsealed {
			return !out[i].Unsealed
		}
		return out[i].Number < out[j].Number
	})
	return out, nil
}

// Open returns a reader of an archive file's NDJSON (it is gzip; a file
// that is not is read as it is). Closing it closes the file.
func Open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := manifest.Decompressed(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{r, f}, nil
}
