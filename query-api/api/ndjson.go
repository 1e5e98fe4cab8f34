package api

// The self-proving export: NDJSON rows under a signed checkpoint, closed
// by a signed manifest (schemas/manifest).

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/manifest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// provenParams are the NDJSON export's parameters beyond the filters.
var provenParams = []string{"checkpoint", "from_index", "to_index"}

// lookupRows is how many rows the export looks up leaves for at once.
const lookupRows = 1000

// provenExport is one self-proving export being written.
type provenExport struct {
	a      *API
	c      echo.Context
	ws     string
	size   int64
	m      manifest.Manifest
	stream *httpserver.Stream
	rows   int
}

func (a *API) exportNDJSON(c echo.Context) error {
	ws, q := c.Param("workspace_id"), c.QueryParams()
	f, err := parseFilter(ws, q, provenParams...)
	if err != nil {
		return err
	}
	if a.o.Signer == nil {
		return &httpserver.Error{Status: http.StatusServiceUnavailable, Code: "manifests_unavailable",
			Message: "this API has no manifest signing key, so it cannot sign export manifests; use the CSV export"}
	}
	ctx := c.Request().Context()
	latest, err := a.latest(ctx, ws)
	if err != nil {
		return err
	}
	x := &provenExport{a: a, c: c, ws: ws}
	if x.size, err = sizeParam(q, "checkpoint", latest.Size); err != nil {
		return err
	}
	cp, err := a.checkpointFor(ctx, ws, x.size, latest)
	if err != nil {
		return err
	}
	if cp == nil {
		return &httpserver.Error{Status: http.StatusNotFound, Code: "no_checkpoint", Field: "checkpoint",
			Message: "no checkpoint was signed at this size; omit it for the latest"}
	}
	rg, err := parseRange(q, f, x.size, manifest.MaxRows)
	if err != nil {
		return err
	}
	if err := x.checkSize(ctx, f, rg); err != nil {
		return err
	}
	now := a.o.Now().UTC()
	filename := fmt.Sprintf("audit-trail-%s-%s.ndjson", strings.ReplaceAll(ws, ":", "_"), now.Format(time.DateOnly))
	rec, err := a.recordExport(c, ws, f, filename, now)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/x-ndjson")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s"`, filename))
	h.Set("X-Audit-Event-Id", rec.ID)
	h.Set("X-Audit-Checkpoint-Size", strconv.FormatInt(x.size, 10))
	x.m = manifest.Manifest{WorkspaceID: ws, CreatedAt: now, Query: f.Used, Checkpoint: cp.Note, Range: rg, Rows: []manifest.RowRef{}}
	if rg != nil {
		x.m.Query["from_index"], x.m.Query["to_index"] = rg.From, rg.To
	}
	return x.finish(x.write(ctx, f, rg))
}

// parseRange reads from_index and to_index: a leaf-index range [from, to)
// of the checkpoint of size, which no filter may narrow; nil when both are
// absent. from_index defaults to 0 and to_index to the checkpoint's size,
// at most maxLeaves after from_index (so from_index alone pages through the
// log). An index the checkpoint does not reach is a 404 naming it, as a
// tree size the log has not reached is: the tree has no such leaf (yet).
func parseRange(q url.Values, f Filters, size, maxLeaves int64) (*manifest.Range, error) {
	_, hasFrom := q["from_index"]
	_, hasTo := q["to_index"]
	if !hasFrom && !hasTo {
		return nil, nil
	}
	if k := firstUsed(f); k != "" {
		return nil, httpserver.BadRequest(k, "a leaf-index range export (from_index, to_index) takes no filters: it exports the whole range")
	}
	from, err := leafIndex(q, "from_index", 0)
	if err != nil {
		return nil, err
	}
	if from >= size {
		return nil, &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Field: "from_index",
			Message: fmt.Sprintf("no leaf %d: the checkpoint's size is %d (leaves 0 to %d)", from, size, size-1)}
	}
	to, err := leafIndex(q, "to_index", min(size, from+maxLeaves))
	if err != nil {
		return nil, err
	}
	switch {
	case to > size:
		return nil, &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Field: "to_index",
			Message: fmt.Sprintf("no leaf %d: the checkpoint's size is %d, the largest end of a range", to-1, size)}
	case to <= from:
		return nil, httpserver.BadRequest("to_index", "must be larger than from_index (the range is [from_index, to_index))")
	case to-from > maxLeaves:
		return nil, httpserver.BadRequest("to_index", fmt.Sprintf("at most %d leaves per export: to_index at most from_index + %d", maxLeaves, maxLeaves))
	}
	return &manifest.Range{From: from, To: to}, nil
}

// leafIndex parses the leaf index parameter name: 0 or more; def when it
// is absent.
func leafIndex(q url.Values, name string, def int64) (int64, error) {
	if len(q[name]) == 0 {
		return def, nil
	}
	s, err := single(q, name, 20)
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil || n < 0 {
		return 0, httpserver.BadRequest(name, "must be a leaf index: a whole number from 0")
	}
	return n, nil
}

// firstUsed returns the first filter of f in name order, "" when none.
func firstUsed(f Filters) string {
	first := ""
	for k := range f.Used {
		if first == "" || k < first {
			first = k
		}
	}
	return first
}

// checkSize refuses, before anything is recorded, a filtered export whose
// manifest would exceed manifest.MaxRows (parseRange bounds a range).
func (x *provenExport) checkSize(ctx context.Context, f Filters, rg *manifest.Range) error {
	if rg != nil {
		return nil
	}
	n, err := x.a.o.Events.Count(ctx, f.Filter)
	if err != nil {
		return x.a.storeError("count events", err)
	}
	if n > manifest.MaxRows {
		return httpserver.BadRequest("since", fmt.Sprintf("%d events match; a self-proving export holds at most %d: narrow the window with since and until", n, manifest.MaxRows))
	}
	return nil
}

// write streams the rows and the closing manifest line.
func (x *provenExport) write(ctx context.Context, f Filters, rg *manifest.Range) error {
	var err error
	if x.stream, err = httpserver.NewStream(x.c); err != nil {
		return err
	}
	if rg != nil {
		err = x.writeRange(ctx, *rg)
	} else {
		err = x.writeFiltered(ctx, f)
	}
	if err != nil {
		return err
	}
	if err := x.addHashes(); err != nil {
		return err
	}
	signed, err := x.m.Sign(x.a.o.Signer)
	if err != nil {
		return err
	}
	return x.line(manifest.Closing{Manifest: string(signed)})
}

// writeFiltered writes the matching rows that are leaves of the
// checkpoint, newest first; rows not sealed in it yet are left out.
func (x *provenExport) writeFiltered(ctx context.Context, f Filters) error {
	batch := make([]migrations.Row, 0, lookupRows)
	flush := func() error {
		keys := make([]store.Key, len(batch))
		for i, r := range batch {
			keys[i] = store.Key{TimestampNs: r.TimestampNs, ID: r.ID}
		}
		idx, err := x.a.o.Integrity.LeafIndexes(ctx, x.ws, keys, x.size)
		if err != nil {
			return err
		}
		for i := range batch {
			n, ok := idx[keys[i]]
			if !ok {
				x.m.Unsealed++
				continue
			}
			if err := x.row(&batch[i], n); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	err := x.a.o.Events.Export(ctx, f.Filter, func(r *migrations.Row) error {
		batch = append(batch, *r)
		if len(batch) == lookupRows {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// writeRange writes the rows of the leaves [from, to) in log order;
// leaves whose event the store does not hold (or whose leaf row is gone)
// are listed as absent, without a claim that they expired.
func (x *provenExport) writeRange(ctx context.Context, rg manifest.Range) error {
	var leaves []store.Leaf
	err := x.a.o.Integrity.Leaves(ctx, x.ws, rg.From, rg.To, func(l store.Leaf) error {
		leaves = append(leaves, l)
		return nil
	})
	if err != nil {
		return err
	}
	next := rg.From
	for start := 0; start < len(leaves); start += lookupRows {
		chunk := leaves[start:min(start+lookupRows, len(leaves))]
		keys := make([]store.Key, len(chunk))
		for i, l := range chunk {
			keys[i] = store.Key{TimestampNs: l.TimestampNs, ID: l.ID}
		}
		rows := make(map[store.Key]migrations.Row, len(chunk))
		if err := x.a.o.Events.RowsByKeys(ctx, x.ws, keys, func(r *migrations.Row) error {
			rows[store.Key{TimestampNs: r.TimestampNs, ID: r.ID}] = *r
			return nil
		}); err != nil {
			return err
		}
		for i, l := range chunk {
			for ; next < l.Index; next++ {
				x.m.Absent = append(x.m.Absent, next)
			}
			next = l.Index + 1
			if r, ok := rows[keys[i]]; ok {
				if err := x.row(&r, l.Index); err != nil {
					return err
				}
			} else {
				x.m.Absent = append(x.m.Absent, l.Index)
			}
		}
	}
	for ; next < rg.To; next++ {
		x.m.Absent = append(x.m.Absent, next)
	}
	return nil
}

// row writes one exported row and adds it to the manifest.
func (x *provenExport) row(r *migrations.Row, index int64) error {
	if err := x.stream.Progress(); err != nil {
		return err
	}
	x.m.Rows = append(x.m.Rows, manifest.RowRef{ID: r.ID, TimestampNs: r.TimestampNs, LeafIndex: index})
	return x.line(manifest.LineOf(r))
}

func (x *provenExport) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := x.c.Response().Write(append(b, '\n')); err != nil {
		return err
	}
	if x.rows++; x.rows%flushRows == 0 {
		x.c.Response().Flush()
	}
	return nil
}

// addHashes adds the stored hashes every row's inclusion proof needs.
func (x *provenExport) addHashes() error {
	indexes := make([]int64, len(x.m.Rows))
	for i, r := range x.m.Rows {
		indexes[i] = r.LeafIndex
	}
	need, err := manifest.NeededHashes(x.size, indexes)
	if err != nil {
		return err
	}
	hr := x.a.o.Integrity.HashReader(x.c.Request().Context(), x.ws)
	x.m.Hashes = make([]manifest.StoredHash, 0, len(need))
	for start := 0; start < len(need); start += 5000 {
		chunk := need[start:min(start+5000, len(need))]
		hs, err := hr.ReadHashes(chunk)
		if err != nil {
			return err
		}
		for i, n := range chunk {
			x.m.Hashes = append(x.m.Hashes, manifest.StoredHash{Index: n, Hash: hs[i]})
		}
	}
	return nil
}

// finish ends the answer: an error answer when nothing was sent yet, a
// cut connection when part of the file is out (so a partial export never
// looks complete; it also has no manifest line).
func (x *provenExport) finish(err error) error {
	resp := x.c.Response()
	if err == nil {
		x.a.exports.WithLabelValues("ok").Inc()
		x.a.rows.Add(float64(len(x.m.Rows)))
		resp.Flush()
		return nil
	}
	x.a.exports.WithLabelValues("failed").Inc()
	if !resp.Committed {
		h := resp.Header()
		h.Del(echo.HeaderContentDisposition)
		h.Del("X-Audit-Event-Id")
		h.Del("X-Audit-Checkpoint-Size")
		return x.a.storeError("export events", err)
	}
	x.a.o.Log.Error("self-proving export stopped while streaming", "workspace_id", x.ws, "rows", len(x.m.Rows), "err", err)
	panic(http.ErrAbortHandler)
}
