package api

// The integrity log's endpoints: the latest (or a given) checkpoint, an
// event's inclusion proof, a consistency proof between two tree sizes, and
// the public verifier keys.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/query-api/verify"
)

// LogReader is what the API needs of the integrity log.
type LogReader interface {
	// LatestCheckpoint returns the largest checkpoint or store.ErrNoCheckpoint.
	LatestCheckpoint(ctx context.Context, workspaceID string) (store.Checkpoint, error)
	// CheckpointAt returns the checkpoint of a size or store.ErrNoCheckpoint.
	CheckpointAt(ctx context.Context, workspaceID string, size int64) (store.Checkpoint, error)
	// LeafByKey returns the leaf of an event (timestamp, id) or
	// store.ErrNoLeaf.
	LeafByKey(ctx context.Context, workspaceID string, k store.Key) (store.Leaf, error)
	// HashReader reads the workspace's stored hashes with ctx.
	HashReader(ctx context.Context, workspaceID string) tlog.HashReader
	// LeafIndexes returns the leaf indexes (below size) of stored events.
	LeafIndexes(ctx context.Context, workspaceID string, keys []store.Key, size int64) (map[store.Key]int64, error)
	// Leaves calls fn for each leaf with an index in [from, to), in order.
	Leaves(ctx context.Context, workspaceID string, from, to int64, fn func(store.Leaf) error) error
}

// CheckpointResponse is a signed checkpoint.
type CheckpointResponse struct {
	Size     int64     `json:"size"`
	RootHash tlog.Hash `json:"root_hash"`
	// Note is the signed note (C2SP tlog-checkpoint); verify it with a
	// key of GET /v1/log/keys.
	Note     string    `json:"note"`
	KeyName  string    `json:"key_name"`
	SignedAt time.Time `json:"signed_at"`
}

// InclusionResponse proves that an event is a leaf of a tree size.
type InclusionResponse struct {
	ID          string      `json:"id"`
	LeafIndex   int64       `json:"leaf_index"`
	LeafHash    tlog.Hash   `json:"leaf_hash"`
	TreeSize    int64       `json:"tree_size"`
	RootHash    tlog.Hash   `json:"root_hash"`
	Proof       []tlog.Hash `json:"proof"`
	Checkpoint  *string     `json:"checkpoint"`
	TimestampNs int64       `json:"timestamp_ns"`
}

// ConsistencyResponse proves that the tree of size From is a prefix of
// the tree of size To.
type ConsistencyResponse struct {
	From     int64       `json:"from"`
	To       int64       `json:"to"`
	FromRoot tlog.Hash   `json:"from_root"`
	ToRoot   tlog.Hash   `json:"to_root"`
	Proof    []tlog.Hash `json:"proof"`
}

// KeysResponse lists the note verifier keys of checkpoints and, apart,
// of export manifests: a verifier accepts each key for its kind of note
// only.
type KeysResponse struct {
	Keys         []string `json:"keys"`
	ManifestKeys []string `json:"manifest_keys"`
	Origin       string   `json:"origin"`
}

func (a *API) registerLog(e *echo.Echo, mw []echo.MiddlewareFunc) {
	e.GET("/v1/log/keys", a.keys)
	const ws = "/v1/workspaces/:workspace_id"
	e.GET(ws+"/log/checkpoint", a.checkpoint, mw...)
	e.GET(ws+"/log/consistency", a.consistency, mw...)
	e.GET(ws+"/audit-events/:id/proof", a.inclusion, mw...)
}

func (a *API) keys(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	resp := KeysResponse{Keys: a.o.VerifierKeys, ManifestKeys: a.o.ManifestKeys, Origin: a.o.Origin}
	if resp.Keys == nil {
		resp.Keys = []string{}
	}
	if resp.ManifestKeys == nil {
		resp.ManifestKeys = []string{}
	}
	return c.JSON(http.StatusOK, resp)
}

func (a *API) checkpoint(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "size"); err != nil {
		return err
	}
	ctx, ws := c.Request().Context(), c.Param("workspace_id")
	latest, err := a.latest(ctx, ws)
	if err != nil {
		return err
	}
	size, err := sizeParam(c.QueryParams(), "size", latest.Size)
	if err != nil {
		return err
	}
	cp := latest
	if size != latest.Size {
		if cp, err = a.o.Integrity.CheckpointAt(ctx, ws, size); errors.Is(err, store.ErrNoCheckpoint) {
			return &httpserver.Error{Status: http.StatusNotFound, Code: "no_checkpoint", Field: "size",
				Message: "no checkpoint was signed at this size; use a size from the checkpoint history or omit it"}
		} else if err != nil {
			return a.storeError("read checkpoint", err)
		}
	}
	resp, err := checkpointResponse(cp)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

// checkpointResponse answers with the size and root of the signed note,
// never of the table's columns (which nothing authenticates).
func checkpointResponse(cp store.Checkpoint) (CheckpointResponse, error) {
	parsed, err := verify.ParseCheckpoint(cp.Note)
	if err != nil || parsed.WorkspaceID != cp.WorkspaceID {
		return CheckpointResponse{}, fmt.Errorf("stored checkpoint of size %d of workspace %s: its note is not a checkpoint of it: %v", cp.Size, cp.WorkspaceID, err)
	}
	return CheckpointResponse{Size: parsed.Size, RootHash: parsed.Root, Note: cp.Note, KeyName: cp.KeyName, SignedAt: cp.SignedAt.UTC()}, nil
}

// latest returns the workspace's latest checkpoint, answering 404
// no_checkpoint when its log has none yet.
func (a *API) latest(ctx context.Context, ws string) (store.Checkpoint, error) {
	cp, err := a.o.Integrity.LatestCheckpoint(ctx, ws)
	if errors.Is(err, store.ErrNoCheckpoint) {
		return cp, &httpserver.Error{Status: http.StatusNotFound, Code: "no_checkpoint",
			Message: "the workspace's log has no signed checkpoint yet"}
	}
	if err != nil {
		return cp, a.storeError("read checkpoint", err)
	}
	return cp, nil
}

func (a *API) inclusion(c echo.Context) error {
	if err := onlyParams(c.QueryParams(), "size"); err != nil {
		return err
	}
	id := c.Param("id")
	if !idPattern.MatchString(id) {
		return httpserver.BadRequest("id", "must be 1-128 letters, digits, '.', '_', ':' or '-'")
	}
	ctx, ws := c.Request().Context(), c.Param("workspace_id")
	latest, err := a.latest(ctx, ws)
	if err != nil {
		return err
	}
	size, err := sizeParam(c.QueryParams(), "size", latest.Size)
	if err != nil {
		return err
	}
	// The event's timestamp first (the events table's key), so the leaf
	// lookup reads one day partition, not the workspace's whole log.
	ev, err := a.o.Events.Get(ctx, ws, id)
	if errors.Is(err, store.ErrNotFound) {
		return &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Field: "id",
			Message: "no event with this id in the retention window"}
	}
	if err != nil {
		return a.storeError("get event", err)
	}
	lf, err := a.o.Integrity.LeafByKey(ctx, ws, store.Key{TimestampNs: ev.Timestamp.UnixNano(), ID: id})
	if errors.Is(err, store.ErrNoLeaf) {
		return &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Field: "id",
			Message: "no leaf for this event yet: it is sealed within the checkpoint interval (or was stored outside the pipeline)"}
	}
	if err != nil {
		return a.storeError("read leaf", err)
	}
	if lf.Index >= size {
		return &httpserver.Error{Status: http.StatusConflict, Code: "not_in_checkpoint", Field: "size",
			Message: fmt.Sprintf("the event is leaf %d, not in a tree of size %d; ask for a larger size", lf.Index, size)}
	}
	hr := a.o.Integrity.HashReader(ctx, ws)
	proof, err := tlog.ProveRecord(size, lf.Index, hr)
	if err != nil {
		return a.storeError("prove inclusion", err)
	}
	root, err := tlog.TreeHash(size, hr)
	if err != nil {
		return a.storeError("tree hash", err)
	}
	resp := InclusionResponse{ID: lf.ID, LeafIndex: lf.Index, LeafHash: lf.Hash, TreeSize: size, RootHash: root,
		Proof: proof, TimestampNs: lf.TimestampNs}
	if resp.Proof == nil {
		resp.Proof = []tlog.Hash{}
	}
	if cp, err := a.checkpointFor(ctx, ws, size, latest); err != nil {
		return err
	} else if cp != nil {
		resp.Checkpoint = &cp.Note
	}
	return c.JSON(http.StatusOK, resp)
}

// checkpointFor returns the checkpoint of size, nil when none was signed
// at that size.
func (a *API) checkpointFor(ctx context.Context, ws string, size int64, latest store.Checkpoint) (*store.Checkpoint, error) {
	if size == latest.Size {
		return &latest, nil
	}
	cp, err := a.o.Integrity.CheckpointAt(ctx, ws, size)
	if errors.Is(err, store.ErrNoCheckpoint) {
		return nil, nil
	}
	if err != nil {
		return nil, a.storeError("read checkpoint", err)
	}
	return &cp, nil
}

func (a *API) consistency(c echo.Context) error {
	q := c.QueryParams()
	if err := onlyParams(q, "from", "to"); err != nil {
		return err
	}
	ctx, ws := c.Request().Context(), c.Param("workspace_id")
	latest, err := a.latest(ctx, ws)
	if err != nil {
		return err
	}
	to, err := sizeParam(q, "to", latest.Size)
	if err != nil {
		return err
	}
	if len(q["from"]) == 0 {
		return httpserver.BadRequest("from", "required: the older tree size")
	}
	from, err := sizeParam(q, "from", latest.Size)
	if err != nil {
		return err
	}
	if from > to {
		return httpserver.BadRequest("from", "must not be larger than to")
	}
	hr := a.o.Integrity.HashReader(ctx, ws)
	proof, err := tlog.ProveTree(to, from, hr)
	if err != nil {
		return a.storeError("prove consistency", err)
	}
	resp := ConsistencyResponse{From: from, To: to, Proof: proof}
	if resp.Proof == nil {
		resp.Proof = []tlog.Hash{}
	}
	if resp.FromRoot, err = tlog.TreeHash(from, hr); err != nil {
		return a.storeError("tree hash", err)
	}
	if resp.ToRoot, err = tlog.TreeHash(to, hr); err != nil {
		return a.storeError("tree hash", err)
	}
	return c.JSON(http.StatusOK, resp)
}

// onlyParams rejects any query parameter not in names.
func onlyParams(q url.Values, names ...string) error {
	for k := range q {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return httpserver.BadRequest(k, "unknown query parameter")
		}
	}
	return nil
}

// sizeParam parses the tree size parameter name: 1 to latest; latest when
// it is absent (given empty, it is no number: a 400).
func sizeParam(q url.Values, name string, latest int64) (int64, error) {
	if len(q[name]) == 0 {
		return latest, nil
	}
	s, err := single(q, name, 20)
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(s, 10, 64)
	if perr != nil || n < 1 {
		return 0, httpserver.BadRequest(name, fmt.Sprintf("must be a tree size from 1 to %d (the latest checkpoint)", latest))
	}
	if n > latest {
		// A well-formed size the log has not reached: no such tree (yet).
		return 0, &httpserver.Error{Status: http.StatusNotFound, Code: "not_found", Field: name,
			Message: fmt.Sprintf("no tree of size %d: the latest checkpoint's size is %d", n, latest)}
	}
	return n, nil
}
