package verify

// Where checks read from: ClickHouse (the store), the read API, and the
// checkpoints topic.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/internal/kvtopic"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// StoreSource reads a workspace's log and rows from ClickHouse.
type StoreSource struct {
	*store.Log
	Events *store.Store
}

// Rows calls fn for every stored row of the workspace in the retention
// window: every unmerged copy of an event, since the API may serve any.
func (s StoreSource) Rows(ctx context.Context, workspaceID string, fn func(r *migrations.Row) error) error {
	return s.Events.ExportCopies(ctx, store.Filter{WorkspaceID: workspaceID}, fn)
}

// ProveTree proves consistency from ClickHouse's stored hashes.
func (s StoreSource) ProveTree(ctx context.Context, workspaceID string, from, to int64) (tlog.TreeProof, error) {
	return tlog.ProveTree(to, from, s.HashReader(ctx, workspaceID))
}

// API reads checkpoints and consistency proofs from the read API.
type API struct {
	BaseURL string
	Token   string
	Client  *http.Client
}

// Checkpoint returns the workspace's latest signed checkpoint note.
func (a API) Checkpoint(ctx context.Context, workspaceID string) ([]byte, error) {
	var resp struct {
		Note string `json:"note"`
	}
	if err := a.get(ctx, "/v1/workspaces/"+url.PathEscape(workspaceID)+"/log/checkpoint", &resp); err != nil {
		return nil, err
	}
	return []byte(resp.Note), nil
}

// ProveTree asks the API for a consistency proof.
func (a API) ProveTree(ctx context.Context, workspaceID string, from, to int64) (tlog.TreeProof, error) {
	var resp struct {
		Proof []tlog.Hash `json:"proof"`
	}
	path := fmt.Sprintf("/v1/workspaces/%s/log/consistency?from=%s&to=%s", url.PathEscape(workspaceID),
		strconv.FormatInt(from, 10), strconv.FormatInt(to, 10))
	if err := a.get(ctx, path, &resp); err != nil {
		return nil, err
	}
	return resp.Proof, nil
}

func (a API) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.BaseURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	c := a.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}

// Published is one record of the checkpoints topic.
type Published struct {
	WorkspaceID string
	Note        []byte
}

// TopicCheckpoints reads the checkpoints topic from its start to its end
// offsets at the time of the call and returns its records in order (a
// compacted topic may still hold several of a workspace).
func TopicCheckpoints(ctx context.Context, brokerOpts []kgo.Opt, topic string) ([]Published, error) {
	var out []Published
	t, err := kvtopic.New(brokerOpts, topic, func(key string, value []byte) {
		if value != nil {
			out = append(out, Published{WorkspaceID: key, Note: append([]byte(nil), value...)})
		}
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- t.Run(ctx) }()
	err = t.WaitReady(ctx)
	cancel()
	if rerr := <-done; err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", topic, err)
	}
	return out, nil
}

// LatestPerWorkspace keeps the last record of each workspace (the
// compacted topic's value), in the order they were published.
func LatestPerWorkspace(recs []Published) []Published {
	last := map[string]int{}
	for i, p := range recs {
		last[p.WorkspaceID] = i
	}
	var out []Published
	for i, p := range recs {
		if last[p.WorkspaceID] == i {
			out = append(out, p)
		}
	}
	return out
}

// LargestValid returns the largest checkpoint of a workspace among recs
// that a known key signed; records of other keys, other workspaces or
// smaller sizes are passed over.
func LargestValid(recs []Published, workspaceID string, known note.Verifiers, origin string) (Checkpoint, bool) {
	var best Checkpoint
	found := false
	for _, p := range recs {
		if p.WorkspaceID != workspaceID {
			continue
		}
		cp, err := OpenCheckpoint(p.Note, known, origin)
		if err != nil || cp.WorkspaceID != workspaceID || (found && cp.Size <= best.Size) {
			continue
		}
		best, found = cp, true
	}
	return best, found
}

// SealerCaughtUp reports whether the sealer's consumer group has
// committed every record of the events topic: each partition holding
// records has a committed offset at its end offset.
func SealerCaughtUp(ctx context.Context, brokerOpts []kgo.Opt, group, topic string) (bool, error) {
	cl, err := kgo.NewClient(brokerOpts...)
	if err != nil {
		return false, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return false, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	caughtUp := true
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, o.Partition)
		if o.Offset > 0 && (!ok || c.At < o.Offset) {
			caughtUp = false
		}
	})
	return caughtUp, nil
}
