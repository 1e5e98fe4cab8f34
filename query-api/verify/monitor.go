package verify

// Monitor: a witness's memory. The last checkpoint seen per workspace is
// kept in a state file; each new one must be consistent with it.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/segmentio/encoding/json"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Seen is the last checkpoint a monitor accepted for a workspace.
type Seen struct {
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
	Note string    `json:"note"`
}

// State is a monitor's memory: the last checkpoint accepted per
// workspace. It is not safe for concurrent use.
type State struct {
	Workspaces map[string]Seen `json:"workspaces"`
}

// LoadState reads a state file; a missing file is an empty state.
func LoadState(path string) (*State, error) {
	s := &State{Workspaces: map[string]Seen{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if s.Workspaces == nil {
		s.Workspaces = map[string]Seen{}
	}
	return s, nil
}

// Save writes the state file atomically (a temporary file renamed).
func (s *State) Save(path string) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".verify-state-*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// Prover returns a consistency proof between two sizes of a workspace's
// log (from the API, or from ClickHouse's stored hashes).
type Prover interface {
	ProveTree(ctx context.Context, workspaceID string, from, to int64) (tlog.TreeProof, error)
}

// Observe checks a new (signature-checked) checkpoint against the last one
// seen for its workspace and returns the problems: a smaller size
// (rollback), another root at the same size, or a larger tree that is not
// consistent with the one seen (fork). A checkpoint without problems
// becomes the one seen; one with problems leaves the state unchanged.
func (s *State) Observe(ctx context.Context, cp Checkpoint, p Prover) []string {
	prev, ok := s.Workspaces[cp.WorkspaceID]
	accept := func() []string {
		s.Workspaces[cp.WorkspaceID] = Seen{Size: cp.Size, Root: cp.Root, Note: cp.Note}
		return nil
	}
	switch {
	case !ok || (cp.Size == prev.Size && cp.Root == prev.Root):
		return accept()
	case cp.Size < prev.Size:
		return []string{fmt.Sprintf("workspace %s: rollback: checkpoint of size %d is smaller than size %d seen before", cp.WorkspaceID, cp.Size, prev.Size)}
	case cp.Size == prev.Size:
		return []string{fmt.Sprintf("workspace %s: fork: checkpoint of size %d has root %s, the one seen before %s", cp.WorkspaceID, cp.Size, cp.Root, prev.Root)}
	case prev.Size == 0:
		return accept()
	}
	proof, err := p.ProveTree(ctx, cp.WorkspaceID, prev.Size, cp.Size)
	if err != nil {
		return []string{fmt.Sprintf("workspace %s: cannot check checkpoint %d against %d seen before: %v", cp.WorkspaceID, cp.Size, prev.Size, err)}
	}
	if err := tlog.CheckTree(proof, cp.Size, cp.Root, prev.Size, prev.Root); err != nil {
		return []string{fmt.Sprintf("workspace %s: fork: checkpoint of size %d is not consistent with size %d seen before (%v)", cp.WorkspaceID, cp.Size, prev.Size, err)}
	}
	return accept()
}

// Trusted returns the seen checkpoint of a workspace as a Checkpoint, for
// an online check against it.
func (s *State) Trusted(workspaceID string) (*Checkpoint, bool) {
	seen, ok := s.Workspaces[workspaceID]
	if !ok {
		return nil, false
	}
	return &Checkpoint{WorkspaceID: workspaceID, Size: seen.Size, Root: seen.Root, Note: seen.Note, KeyName: "monitor state"}, true
}

// ObservePublished checks one published checkpoint note: its signature
// and workspace, then (Observe) its consistency with the one seen before.
func (s *State) ObservePublished(ctx context.Context, p Published, known note.Verifiers, origin string, prover Prover) []string {
	cp, err := OpenCheckpoint(p.Note, known, origin)
	if err != nil {
		return []string{fmt.Sprintf("workspace %s: %v", p.WorkspaceID, err)}
	}
	if cp.WorkspaceID != p.WorkspaceID {
		return []string{fmt.Sprintf("workspace %s: published a checkpoint of workspace %s", p.WorkspaceID, cp.WorkspaceID)}
	}
	return s.Observe(ctx, cp, prover)
}
