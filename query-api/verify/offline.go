package verify

// Offline: an export (NDJSON rows and its closing signed manifest)
// against the verifier keys alone.

import (
	"bufio"
	"fmt"
	"io"

	"github.com/segmentio/encoding/json"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/manifest"
)

// Report is what a check found: Problems (each a one-line verdict; none
// means the check passed) and Notes (facts that are not problems, such as
// leaves expired by retention).
type Report struct {
	Problems []string
	Notes    []string
	// Checked counts the rows (or leaves) checked.
	Checked int
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// MaxLine bounds one NDJSON line of an export (an event is at most 32 KiB
// of JSON; its escaped form stays well under this).
const MaxLine = 1 << 20

// Offline checks an export read from r: every row is in the log,
// unchanged, under the manifest's checkpoint; every row of the manifest is
// in the export; and, for a range, nothing in it is missing. The manifest
// must be signed by a manifest key, its checkpoint by a checkpoint key:
// neither kind of key is accepted for the other's notes. It returns an
// error only when r cannot be read. An archive file (gzip, see
// consumers/archive) is decompressed first.
func Offline(r io.Reader, checkpointKeys, manifestKeys note.Verifiers, origin string) (Report, error) {
	var rep Report
	r, err := manifest.Decompressed(r)
	if err != nil {
		return rep, fmt.Errorf("read export: %w", err)
	}
	lines, closing, err := readExport(r, &rep)
	if err != nil {
		return rep, err
	}
	if closing == "" {
		rep.problem("the export has no manifest line: it was cut short or is not a self-proving export")
		return rep, nil
	}
	m, err := manifest.Open([]byte(closing), manifestKeys)
	if err != nil {
		rep.problem("manifest refused: %v", err)
		return rep, nil
	}
	cp, err := OpenCheckpoint([]byte(m.Checkpoint), checkpointKeys, origin)
	if err != nil {
		rep.problem("manifest's checkpoint refused: %v", err)
		return rep, nil
	}
	if cp.WorkspaceID != m.WorkspaceID {
		rep.problem("manifest of workspace %s carries a checkpoint of workspace %s", m.WorkspaceID, cp.WorkspaceID)
		return rep, nil
	}
	checkRows(&rep, m, cp, lines)
	return rep, nil
}

// readExport reads the NDJSON lines of an export and its closing line.
func readExport(r io.Reader, rep *Report) ([]manifest.Line, string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), MaxLine)
	var lines []manifest.Line
	closing := ""
	for n := 1; sc.Scan(); n++ {
		if closing != "" {
			rep.problem("line %d: rows after the manifest line", n)
			break
		}
		var c manifest.Closing
		if err := json.Unmarshal(sc.Bytes(), &c); err == nil && c.Manifest != "" {
			closing = c.Manifest
			continue
		}
		var l manifest.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.ID == "" {
			rep.problem("line %d: not an exported event", n)
			continue
		}
		if len(lines) == manifest.MaxRows {
			rep.problem("line %d: more rows than an export holds (%d)", n, manifest.MaxRows)
			return nil, "", nil
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("read export: %w", err)
	}
	return lines, closing, nil
}

type rowKey struct {
	ns int64
	id string
}

// checkRows checks each exported line against the manifest and its
// checkpoint, and the manifest's claims against the lines.
func checkRows(rep *Report, m *manifest.Manifest, cp Checkpoint, lines []manifest.Line) {
	refs := make(map[rowKey]int64, len(m.Rows))
	for _, ref := range m.Rows {
		refs[rowKey{ref.TimestampNs, ref.ID}] = ref.LeafIndex
	}
	hashes := m.Reader()
	seen := map[int64]bool{}
	for _, l := range lines {
		rep.Checked++
		index, ok := refs[rowKey{l.TimestampNs, l.ID}]
		switch {
		case l.WorkspaceID != m.WorkspaceID:
			rep.problem("row %s: of workspace %s, not the manifest's %s", l.ID, l.WorkspaceID, m.WorkspaceID)
			continue
		case !ok:
			rep.problem("row %s: not in the manifest (added to the export, or altered in its id or timestamp)", l.ID)
			continue
		case seen[index]:
			rep.problem("row %s (leaf %d): exported twice", l.ID, index)
			continue
		}
		seen[index] = true
		row := l.Row()
		if err := proveIn(hashes, cp, index, leaf.Hash(&row)); err != nil {
			rep.problem("row %s (leaf %d): altered, or not in the log under checkpoint %d: %v", l.ID, index, cp.Size, err)
		}
	}
	for _, ref := range m.Rows {
		if !seen[ref.LeafIndex] {
			rep.problem("row %s (leaf %d): in the manifest but missing from the export", ref.ID, ref.LeafIndex)
		}
	}
	if m.Unsealed > 0 {
		rep.note("%d rows matching the query were not leaves of checkpoint %d and are not in the export (sealed after it, or never: verify online names rows without a leaf)", m.Unsealed, cp.Size)
	}
	if m.Range != nil {
		checkRange(rep, m, cp, seen)
	}
}

// proveIn rebuilds the inclusion proof of leaf index from hashes and
// checks it against the checkpoint's signed root.
func proveIn(hashes tlog.HashReader, cp Checkpoint, index int64, h tlog.Hash) error {
	if index >= cp.Size {
		return fmt.Errorf("leaf index beyond the tree size")
	}
	p, err := tlog.ProveRecord(cp.Size, index, hashes)
	if err != nil {
		return err
	}
	return tlog.CheckRecord(p, cp.Size, cp.Root, index, h)
}

// checkRange checks a completeness claim: every index of the range is an
// exported row. One the manifest lists as absent is still a problem: that
// its event expired is not provable.
func checkRange(rep *Report, m *manifest.Manifest, cp Checkpoint, seen map[int64]bool) {
	rg := *m.Range
	if rg.From < 0 || rg.To < rg.From || rg.To > cp.Size || rg.To-rg.From > manifest.MaxRows {
		rep.problem("manifest range [%d, %d) is not inside checkpoint %d, or longer than %d leaves", rg.From, rg.To, cp.Size, manifest.MaxRows)
		return
	}
	absent := map[int64]bool{}
	for _, i := range m.Absent {
		absent[i] = true
	}
	var gaps, listed int
	for i := rg.From; i < rg.To; i++ {
		if seen[i] {
			continue
		}
		gaps++
		if listed < 100 {
			listed++
			if absent[i] {
				rep.problem("leaf %d: not in the export: its event is absent from the store (removed, or expired by retention: not provable)", i)
			} else {
				rep.problem("leaf %d: missing from an export claimed complete for [%d, %d)", i, rg.From, rg.To)
			}
		}
	}
	if gaps > listed {
		rep.problem("%d more leaves of [%d, %d) not in the export", gaps-listed, rg.From, rg.To)
	}
}
