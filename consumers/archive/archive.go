// Package archive keeps a workspace's audit events after they expire:
// before the retention job deletes or drops a workspace's day, the
// Archiver writes its events to compressed NDJSON files under a directory,
//
//	<dir>/<workspace_id>/<yyyy>/<mm>/<dd>.ndjson.gz
//
// each a self-proving export (schemas/manifest): one line per event, then
// the manifest, signed with the manifest key, that carries the
// workspace's latest signed checkpoint and the stored hashes from which
// every row's inclusion proof is rebuilt. `verify offline -export FILE`
// proves such a file with the public verifier keys alone, long after its
// rows left ClickHouse.
//
// A day with more than manifest.MaxRows events gets more parts
// (<dd>.2.ndjson.gz, ...). Rows that have no leaf in the log (the sealer
// never saw them) cannot be proven; they are kept in
// <dd>.unsealed.ndjson.gz, which has no manifest.
//
// Files are written atomically (temporary file, fsync, hard link to the
// final name, never replacing one, directory fsync) and archiving is
// idempotent: rows already in a day's files are
// not written again, and a day with nothing new writes nothing. Rows
// restored from an archive are never archived again.
package archive

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/archivefile"
	"github.com/audittrail/audittrail/schemas/manifest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// Rows reads a workspace's events of one UTC day (a *ClickHouseRows).
type Rows interface {
	Day(ctx context.Context, workspace string, day time.Time, fn func(r *migrations.Row) error) error
}

// Log is what the archiver needs of the integrity log (a *store.Log).
type Log interface {
	LatestCheckpoint(ctx context.Context, workspace string) (store.Checkpoint, error)
	LeafIndexes(ctx context.Context, workspace string, keys []store.Key, size int64) (map[store.Key]int64, error)
	HashReader(ctx context.Context, workspace string) tlog.HashReader
}

// Archiver writes archive files. It implements retention.Archiver and is
// safe for concurrent use (of two archivers completing the same part of a
// day, the second fails with ErrPartExists; a part is never replaced).
type Archiver struct {
	dir    string
	rows   Rows
	log    Log
	signer note.Signer
	known  note.Verifiers
	now    func() time.Time
	files  *prometheus.CounterVec
	lines  prometheus.Counter
}

// New returns an archiver into dir, an absolute path; signer signs the
// manifests (the manifest key, never the checkpoints'), and known holds
// its verifier key (the manifests of files already in dir are checked
// with it); now is the clock (nil: time.Now).
func New(dir string, rows Rows, log Log, signer note.Signer, known note.Verifiers, now func() time.Time) (*Archiver, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("archive directory %q: want an absolute path", dir)
	}
	if signer == nil {
		return nil, errors.New("archive: a manifest signing key is needed to sign archive manifests")
	}
	if known == nil {
		return nil, errors.New("archive: the manifest verifier keys are needed to read the archive's own files")
	}
	if v, err := known.Verifier(signer.Name(), signer.KeyHash()); err != nil || v == nil {
		return nil, fmt.Errorf("archive: the manifest verifier keys lack the signing key's (%s+%08x)", signer.Name(), signer.KeyHash())
	}
	if now == nil {
		now = time.Now
	}
	return &Archiver{dir: filepath.Clean(dir), rows: rows, log: log, signer: signer, known: known, now: now,
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audittrail_archive_files_total",
			Help: "Archive files written, by kind: sealed (provable) or unsealed (rows without a leaf).",
		}, []string{"kind"}),
		lines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "audittrail_archive_rows_total",
			Help: "Events written to archive files.",
		}),
	}, nil
}

// Collectors returns the archiver's metrics, for registration.
func (a *Archiver) Collectors() []prometheus.Collector {
	return []prometheus.Collector{a.files, a.lines}
}

// Dir returns the archive directory.
func (a *Archiver) Dir() string { return a.dir }

// lookupRows is how many rows the archiver looks up leaves for at once.
const lookupRows = 1000

// key names an event of the workspace.
type key struct {
	ns int64
	id string
}

// Archive writes the workspace's events of the UTC day holding day that
// are not archived yet. It returns nil only when every such event is in a
// file on disk (synced). On error, files already completed stay (they are
// whole), and a later call writes the rest. Cancelling ctx stops it with
// ctx's error.
func (a *Archiver) Archive(ctx context.Context, workspace string, day time.Time) error {
	day = day.UTC().Truncate(24 * time.Hour)
	parts, err := archivefile.Parts(a.dir, workspace, day)
	if err != nil {
		return err
	}
	run := &dayRun{a: a, ctx: ctx, ws: workspace, day: day, seen: map[key]bool{}, seenLoose: map[key]bool{}, sealed: 1, unsealed: 1}
	for _, p := range parts {
		var err error
		if p.Unsealed {
			err = looseKeysIn(p.Path, workspace, run.seenLoose)
		} else {
			err = keysIn(p, workspace, day, a.known, run.seen)
		}
		if err != nil {
			return err
		}
		if p.Unsealed {
			run.unsealed = max(run.unsealed, p.Number+1)
		} else {
			run.sealed = max(run.sealed, p.Number+1)
		}
	}
	cp, err := a.log.LatestCheckpoint(ctx, workspace)
	switch {
	case errors.Is(err, store.ErrNoCheckpoint):
	case err != nil:
		return fmt.Errorf("archive %s %s: %w", workspace, day.Format(time.DateOnly), err)
	default:
		run.cp = &cp
	}
	err = a.rows.Day(ctx, workspace, day, run.add)
	if err == nil {
		err = run.flush()
	}
	if err == nil {
		err = run.finish()
	}
	if err != nil {
		run.abort()
		return fmt.Errorf("archive %s %s: %w", workspace, day.Format(time.DateOnly), err)
	}
	return nil
}

// dayRun is one Archive call.
type dayRun struct {
	a   *Archiver
	ctx context.Context
	ws  string
	day time.Time
	cp  *store.Checkpoint
	// seen are the events in the day's verified sealed parts; seenLoose
	// those in its unsealed files (which keep only rows without a leaf
	// from being written there again).
	seen, seenLoose map[key]bool
	// sealed and unsealed are the numbers of the next parts of each kind.
	sealed, unsealed int
	batch            []migrations.Row
	part, loose      *file
	m                *manifest.Manifest
}

// add takes one row of the day.
func (r *dayRun) add(row *migrations.Row) error {
	if r.seen[key{row.TimestampNs, row.ID}] {
		return nil
	}
	r.batch = append(r.batch, *row)
	if len(r.batch) == lookupRows {
		return r.flush()
	}
	return nil
}

// flush looks up the batch's leaves and writes each row to the sealed
// part (with its leaf) or to the unsealed file.
func (r *dayRun) flush() error {
	if len(r.batch) == 0 {
		return nil
	}
	keys := make([]store.Key, len(r.batch))
	for i, row := range r.batch {
		keys[i] = store.Key{TimestampNs: row.TimestampNs, ID: row.ID}
	}
	idx := map[store.Key]int64{}
	if r.cp != nil {
		var err error
		if idx, err = r.a.log.LeafIndexes(r.ctx, r.ws, keys, r.cp.Size); err != nil {
			return err
		}
	}
	for i := range r.batch {
		n, ok := idx[keys[i]]
		var err error
		switch {
		case ok:
			err = r.sealedRow(&r.batch[i], n)
		case !r.seenLoose[key{keys[i].TimestampNs, keys[i].ID}]:
			err = r.unsealedRow(&r.batch[i])
		}
		if err != nil {
			return err
		}
	}
	r.batch = r.batch[:0]
	return nil
}

func (r *dayRun) sealedRow(row *migrations.Row, index int64) error {
	if r.part == nil {
		path, err := archivefile.PartPath(r.a.dir, r.ws, r.day, archivefile.Part{Number: r.sealed})
		if err != nil {
			return err
		}
		if r.part, err = create(path); err != nil {
			return err
		}
		r.m = &manifest.Manifest{WorkspaceID: r.ws, Checkpoint: r.cp.Note, Rows: []manifest.RowRef{},
			Query: map[string]any{"archive_day": r.day.Format(time.DateOnly), "part": r.sealed}}
	}
	r.m.Rows = append(r.m.Rows, manifest.RowRef{ID: row.ID, TimestampNs: row.TimestampNs, LeafIndex: index})
	if err := r.part.line(manifest.LineOf(row)); err != nil {
		return err
	}
	if len(r.m.Rows) == manifest.MaxRows {
		return r.closePart()
	}
	return nil
}

func (r *dayRun) unsealedRow(row *migrations.Row) error {
	if r.loose == nil {
		path, err := archivefile.PartPath(r.a.dir, r.ws, r.day, archivefile.Part{Number: r.unsealed, Unsealed: true})
		if err != nil {
			return err
		}
		if r.loose, err = create(path); err != nil {
			return err
		}
	}
	r.a.lines.Inc()
	return r.loose.line(manifest.LineOf(row))
}

// closePart signs the open part's manifest and puts the file in place.
func (r *dayRun) closePart() error {
	indexes := make([]int64, len(r.m.Rows))
	for i, ref := range r.m.Rows {
		indexes[i] = ref.LeafIndex
	}
	need, err := manifest.NeededHashes(r.cp.Size, indexes)
	if err != nil {
		return err
	}
	hr := r.a.log.HashReader(r.ctx, r.ws)
	r.m.Hashes = make([]manifest.StoredHash, 0, len(need))
	for start := 0; start < len(need); start += 5000 {
		chunk := need[start:min(start+5000, len(need))]
		hs, err := hr.ReadHashes(chunk)
		if err != nil {
			return fmt.Errorf("read the stored hashes of the rows' proofs: %w", err)
		}
		for i, n := range chunk {
			r.m.Hashes = append(r.m.Hashes, manifest.StoredHash{Index: n, Hash: hs[i]})
		}
	}
	r.m.CreatedAt = r.a.now().UTC()
	signed, err := r.m.Sign(r.a.signer)
	if err != nil {
		return err
	}
	if err := r.part.line(manifest.Closing{Manifest: string(signed)}); err != nil {
		return err
	}
	if err := r.part.commit(); err != nil {
		return err
	}
	r.a.files.WithLabelValues("sealed").Inc()
	r.a.lines.Add(float64(len(r.m.Rows)))
	r.part, r.m = nil, nil
	r.sealed++
	return nil
}

// finish closes the open files.
func (r *dayRun) finish() error {
	if r.part != nil {
		if err := r.closePart(); err != nil {
			return err
		}
	}
	if r.loose != nil {
		if err := r.loose.commit(); err != nil {
			return err
		}
		r.a.files.WithLabelValues("unsealed").Inc()
		r.loose = nil
	}
	return nil
}

// abort removes the files not completed.
func (r *dayRun) abort() {
	for _, f := range []*file{r.part, r.loose} {
		if f != nil {
			f.abort()
		}
	}
}
