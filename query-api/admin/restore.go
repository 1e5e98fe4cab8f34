package admin

// Restoring an archived day: every part of the day is read, proven with
// the configured verifier keys (verify offline: the manifest signed by a
// manifest key, its checkpoint by a checkpoint key, every row in the log
// under it), and only then are its rows inserted into the long-term table,
// marked restored and kept until the chosen date. The log is not extended:
// restored events keep their original leaves, whose rows (and the stored
// hashes of their proofs) are written back from the manifest.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/verify"
	"github.com/audittrail/audittrail/schemas/archivefile"
	"github.com/audittrail/audittrail/schemas/leaf"
	"github.com/audittrail/audittrail/schemas/manifest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// MaxArchiveFile bounds the decompressed size of one archive file a
// restore reads (it is proven in memory, one part at a time): a part holds
// at most 100,000 events of at most 32 KiB of JSON, typically under
// 100 MiB.
const MaxArchiveFile = 512 << 20

// Conn is what a restore needs of ClickHouse.
type Conn interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
	Exec(ctx context.Context, query string, args ...any) error
	PrepareBatch(ctx context.Context, query string, opts ...driver.PrepareBatchOption) (driver.Batch, error)
}

// Restorer restores archive files. Safe for concurrent use; it runs one
// restore at a time (each holds up to MaxArchiveFile in memory per file).
type Restorer struct {
	busy           chan struct{}
	maxFile        int64 // MaxArchiveFile (lowered by tests)
	dir            string
	conn           Conn
	database       string
	checkpointKeys note.Verifiers
	manifestKeys   note.Verifiers
	origin         string
}

// NewRestorer returns a restorer from the archive directory dir into
// database; files must verify with the checkpoint and manifest keys
// (origin is the log origin prefix).
func NewRestorer(dir string, conn Conn, database string, checkpointKeys, manifestKeys note.Verifiers, origin string) *Restorer {
	return &Restorer{busy: make(chan struct{}, 1), maxFile: MaxArchiveFile, dir: dir, conn: conn, database: database, checkpointKeys: checkpointKeys, manifestKeys: manifestKeys, origin: origin}
}

// Errors of a restore.
var (
	ErrNoArchive     = errors.New("nothing archived for this workspace and day")
	ErrNoKeptTable   = errors.New("the long-term table " + migrations.KeptTable + " does not exist: run the migrations (migration 7)")
	ErrFileTooLarge  = fmt.Errorf("an archive file is larger than %d bytes decompressed", MaxArchiveFile)
	errNotOneArchive = errors.New("archive file")
)

// NotVerifiedError is returned when an archive file does not verify.
type NotVerifiedError struct {
	File     string
	Problems []string
}

func (e *NotVerifiedError) Error() string {
	return fmt.Sprintf("%s does not verify: %s", e.File, strings.Join(e.Problems, "; "))
}

// Archived is a verified archived day.
type Archived struct {
	// Files are its sealed parts, proven.
	Files []string
	// Rows counts their events.
	Rows int
	// Unsealed counts the rows kept in the day's unsealed files, which
	// cannot be proven and are not restored.
	Unsealed int
}

// Load proves every sealed part of the workspace's day, one at a time
// (at most one part, MaxArchiveFile decompressed, is in memory).
func (r *Restorer) Load(workspace string, day time.Time) (*Archived, error) {
	parts, err := archivefile.Parts(r.dir, workspace, day)
	if err != nil {
		return nil, err
	}
	out := &Archived{}
	for _, p := range parts {
		if p.Unsealed {
			n, err := countLines(p.Path)
			if err != nil {
				return nil, err
			}
			out.Unsealed += n
			continue
		}
		part, err := r.proveFile(p.Path, workspace, day)
		if err != nil {
			return nil, err
		}
		out.Files = append(out.Files, p.Path)
		out.Rows += len(part.rows)
	}
	if len(out.Files) == 0 {
		return nil, ErrNoArchive
	}
	return out, nil
}

// proveFile reads one part and proves it.
func (r *Restorer) proveFile(path, workspace string, day time.Time) (provenPart, error) {
	plain, err := readPlain(path, r.maxFile)
	if err != nil {
		return provenPart{}, err
	}
	return r.prove(path, plain, workspace, day)
}

// countLines counts the lines of an archive file, streaming.
func countLines(path string) (int, error) {
	f, err := archivefile.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNotOneArchive, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), verify.MaxLine)
	n := 0
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%w %s: %v", errNotOneArchive, path, err)
	}
	return n, nil
}

// readPlain reads an archive file, decompressed, bounded.
func readPlain(path string, limit int64) ([]byte, error) {
	f, err := archivefile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotOneArchive, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", errNotOneArchive, path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w", path, ErrFileTooLarge)
	}
	return b, nil
}

// prove verifies one file's content and returns its rows: the manifest
// must be the workspace's and the day's.
// provenPart is one proven part: its events, and the manifest that proves
// them (each row's leaf index, the stored hashes of their proofs).
type provenPart struct {
	rows []migrations.Row
	m    *manifest.Manifest
}

func (r *Restorer) prove(path string, plain []byte, workspace string, day time.Time) (provenPart, error) {
	rep, err := verify.Offline(bytes.NewReader(plain), r.checkpointKeys, r.manifestKeys, r.origin)
	if err != nil {
		return provenPart{}, &NotVerifiedError{File: path, Problems: []string{err.Error()}}
	}
	if len(rep.Problems) > 0 {
		return provenPart{}, &NotVerifiedError{File: path, Problems: rep.Problems}
	}
	var out provenPart
	sc := bufio.NewScanner(bytes.NewReader(plain))
	sc.Buffer(make([]byte, 64<<10), verify.MaxLine)
	lo := day.UTC().Truncate(24 * time.Hour)
	for sc.Scan() {
		var c manifest.Closing
		if json.Unmarshal(sc.Bytes(), &c) == nil && c.Manifest != "" {
			m, err := manifest.Open([]byte(c.Manifest), r.manifestKeys)
			out.m = m
			if err != nil || m.WorkspaceID != workspace || m.Query["archive_day"] != lo.Format(time.DateOnly) {
				return provenPart{}, &NotVerifiedError{File: path, Problems: []string{fmt.Sprintf("the manifest is not an archive of workspace %s on %s", workspace, lo.Format(time.DateOnly))}}
			}
			continue
		}
		var l manifest.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return provenPart{}, &NotVerifiedError{File: path, Problems: []string{"a line is not an event"}}
		}
		row := l.Row()
		if row.Timestamp.Before(lo) || !row.Timestamp.Before(lo.Add(24*time.Hour)) {
			return provenPart{}, &NotVerifiedError{File: path, Problems: []string{fmt.Sprintf("event %s is not of %s", l.ID, lo.Format(time.DateOnly))}}
		}
		out.rows = append(out.rows, row)
	}
	if err := sc.Err(); err != nil {
		return provenPart{}, fmt.Errorf("read %s: %w", path, err)
	}
	if out.m == nil {
		return provenPart{}, &NotVerifiedError{File: path, Problems: []string{"no manifest"}}
	}
	return out, nil
}

// Insert writes the events of the proven parts into the long-term table,
// marked restored and kept until the given day, one part at a time: each
// is read and proven again before its rows are inserted (the file could
// have changed since Load). A failed insert may have stored some rows;
// repeating it is harmless (copies of an event collapse on read).
func (r *Restorer) Insert(ctx context.Context, workspace string, day time.Time, a *Archived, until time.Time) error {
	var n uint64
	q, err := r.conn.Query(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", r.database, migrations.KeptTable)
	if err != nil {
		return fmt.Errorf("look up %s: %w", migrations.KeptTable, err)
	}
	if q.Next() {
		err = q.Scan(&n)
	}
	q.Close()
	if err != nil {
		return fmt.Errorf("look up %s: %w", migrations.KeptTable, err)
	}
	if n == 0 {
		return ErrNoKeptTable
	}
	until = until.UTC().Truncate(24 * time.Hour)
	for _, f := range a.Files {
		part, err := r.proveFile(f, workspace, day)
		if err != nil {
			return err
		}
		if err := r.insert(ctx, part.rows, until); err != nil {
			return err
		}
		if err := r.insertLog(ctx, workspace, part); err != nil {
			return err
		}
	}
	return nil
}

// logChunk is how many leaves or stored hashes one statement inserts (a
// statement of about 100 KiB, under the server's max_query_size).
const logChunk = 500

// insertLog writes back what proves the restored events online: their
// leaf rows (each row's leaf index from the manifest, its leaf hash
// recomputed from the row) into the long-term leaves table, and the
// stored hashes of their proofs from the manifest (retention may have
// reduced their tiles'). Both were proven against the signed checkpoint;
// equal rows already stored collapse.
func (r *Restorer) insertLog(ctx context.Context, workspace string, part provenPart) error {
	index := make(map[[2]string]int64, len(part.m.Rows))
	for _, ref := range part.m.Rows {
		index[[2]string{strconv.FormatInt(ref.TimestampNs, 10), ref.ID}] = ref.LeafIndex
	}
	sealedAt := time.Now().Unix()
	var leaves [][]any
	for i := range part.rows {
		row := &part.rows[i]
		n, ok := index[[2]string{strconv.FormatInt(row.TimestampNs, 10), row.ID}]
		if !ok {
			continue
		}
		h := leaf.Hash(row)
		leaves = append(leaves, []any{workspace, uint64(n), row.TimestampNs, row.ID, hex.EncodeToString(h[:]), sealedAt})
	}
	var hashes [][]any
	for _, sh := range part.m.Hashes {
		level, _ := tlog.SplitStoredHashIndex(sh.Index)
		hashes = append(hashes, []any{workspace, uint64(sh.Index), hex.EncodeToString(sh.Hash[:]), uint8(level)})
	}
	for _, ins := range []struct {
		table, cols, row string
		values           [][]any
	}{
		{migrations.KeptLeavesTable, strings.Join(migrations.Leaves.InsertColumns(), ", "), "SELECT ?, toUInt64(?), toInt64(?), ?, unhex(?), toDateTime(?, 'UTC')", leaves},
		{migrations.HashesTable, strings.Join(migrations.Hashes.InsertColumns(), ", "), "SELECT ?, toUInt64(?), unhex(?), toUInt8(?)", hashes},
	} {
		for start := 0; start < len(ins.values); start += logChunk {
			chunk := ins.values[start:min(start+logChunk, len(ins.values))]
			rows := make([]string, len(chunk))
			var args []any
			for i, v := range chunk {
				rows[i] = ins.row
				args = append(args, v...)
			}
			// INSERT ... SELECT: the values are bound, the hashes unhexed
			// by the server (they travel as text).
			sql := fmt.Sprintf("INSERT INTO %s.%s (%s) %s", r.database, ins.table, ins.cols, strings.Join(rows, " UNION ALL "))
			if err := r.conn.Exec(ctx, sql, args...); err != nil {
				return fmt.Errorf("restore %s: %w", ins.table, err)
			}
		}
	}
	return nil
}

func (r *Restorer) insert(ctx context.Context, rows []migrations.Row, until time.Time) error {
	batch, err := r.conn.PrepareBatch(ctx, migrations.KeptInsert(r.database))
	if err != nil {
		return fmt.Errorf("prepare the restore insert: %w", err)
	}
	for i := range rows {
		if err := batch.Append(migrations.KeptValues(&rows[i], true, until)...); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("restore row %s: %w", rows[i].ID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d restored rows: %w", len(rows), err)
	}
	return nil
}

// restoreRequest is the body of POST .../archive/restore.
type restoreRequest struct {
	Day    string `json:"day"`
	Until  string `json:"until"`
	Reason string `json:"reason"`
	// ShareReason puts the reason in the workspace's own trail too.
	ShareReason bool `json:"share_reason"`
}

func (h *handler) restore(c echo.Context) error {
	var req restoreRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	today := h.o.Now().UTC().Truncate(24 * time.Hour)
	day, err := time.Parse(time.DateOnly, req.Day)
	if err != nil || day.After(today) || day.Year() < 1970 {
		return httpserver.BadRequest("day", "required: the archived UTC day, YYYY-MM-DD, not in the future")
	}
	until, err := time.Parse(time.DateOnly, req.Until)
	if err != nil || !until.After(today) || until.After(today.AddDate(0, 0, MaxDays)) {
		return httpserver.BadRequest("until", fmt.Sprintf("required: the UTC day the restored events expire, YYYY-MM-DD, after today and at most %d days ahead", MaxDays))
	}
	reason, err := checkReason(req.Reason, true)
	if err != nil {
		return err
	}
	if h.o.Restorer == nil {
		return &httpserver.Error{Status: http.StatusConflict, Code: "archive_not_configured",
			Message: "this API has no archive directory: set " + config.ArchiveDir.Name + " (the writer's) on the api"}
	}
	select {
	case h.o.Restorer.busy <- struct{}{}:
		defer func() { <-h.o.Restorer.busy }()
	default:
		return &httpserver.Error{Status: http.StatusConflict, Code: "restore_in_progress",
			Message: "another restore is in progress on this API; retry when it is done"}
	}
	ws, who := c.Param("workspace_id"), operator(c)
	a, err := h.o.Restorer.Load(ws, day)
	if err != nil {
		return h.restoreError(ws, err)
	}
	rec := h.events(c, ws, changeEvent{name: EventArchiveRestored, resource: "Audit archive",
		props: map[string]any{"archive_day": req.Day, "kept_until": req.Until, "rows": a.Rows, "files": len(a.Files),
			"unsealed_not_restored": a.Unsealed}, reason: reason, shareReason: req.ShareReason})
	rec.workspace.Resource.ID = ws + "/" + day.Format("2006/01/02")
	rec.platform.Resource.ID = rec.workspace.Resource.ID
	ctx := c.Request().Context()
	if err := h.emit(ctx, rec); err != nil {
		h.o.Log.Error("record archive restore", "workspace_id", ws, "day", req.Day, "err", err)
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "could not record the restore in the audit trail; nothing was restored, retry"}
	}
	if err := h.o.Restorer.Insert(ctx, ws, day, a, until); err != nil {
		return h.restoreError(ws, err)
	}
	h.o.Log.Info("archive restored", "workspace_id", ws, "day", req.Day, "rows", a.Rows, "until", req.Until, "operator", who)
	return c.JSON(http.StatusOK, RestoreResult{WorkspaceID: ws, Day: req.Day, KeptUntil: req.Until,
		Rows: a.Rows, Files: len(a.Files), UnsealedNotRestored: a.Unsealed})
}

// RestoreResult is the answer of a restore.
type RestoreResult struct {
	WorkspaceID         string `json:"workspace_id"`
	Day                 string `json:"day"`
	KeptUntil           string `json:"kept_until"`
	Rows                int    `json:"rows"`
	Files               int    `json:"files"`
	UnsealedNotRestored int    `json:"unsealed_not_restored"`
}

// restoreError maps a restore's error to its answer.
func (h *handler) restoreError(ws string, err error) error {
	var nv *NotVerifiedError
	switch {
	case errors.Is(err, ErrNoArchive):
		return &httpserver.Error{Status: http.StatusNotFound, Code: "no_archive", Field: "day", Message: err.Error()}
	case errors.As(err, &nv):
		h.o.Log.Warn("archive refused", "workspace_id", ws, "file", nv.File, "problems", len(nv.Problems))
		problems := nv.Problems
		if len(problems) > 20 {
			problems = problems[:20]
		}
		return &httpserver.Error{Status: http.StatusUnprocessableEntity, Code: "archive_not_verified", Field: "day",
			Message: "the archive does not verify with the configured verifier keys; nothing was restored", Details: problems}
	case errors.Is(err, ErrFileTooLarge):
		return &httpserver.Error{Status: http.StatusUnprocessableEntity, Code: "archive_too_large", Field: "day",
			Message: fmt.Sprintf("an archive file of this day is larger than %d MiB decompressed, the most a restore proves in memory; nothing was restored", MaxArchiveFile>>20)}
	case errors.Is(err, errNotOneArchive):
		return &httpserver.Error{Status: http.StatusUnprocessableEntity, Code: "archive_unreadable", Field: "day", Message: "an archive file of this day cannot be read; nothing was restored"}
	case errors.Is(err, ErrNoKeptTable):
		return &httpserver.Error{Status: http.StatusConflict, Code: "not_migrated", Message: err.Error()}
	}
	return h.unavailable("restore the archive", err)
}
