package sealer

// Before a sealer appends to a log it loaded, it checks the stored log
// against the latest checkpoint signed for it, so that it never extends
// (and signs) a log rewritten in ClickHouse.

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrTampered reports a stored log that does not extend its latest signed
// checkpoint: the sealer refuses to append to it or sign it (its records
// wait, and the error repeats, until an operator restores the log).
var ErrTampered = errors.New("the stored log does not extend its latest signed checkpoint")

// anchor holds what a loaded log is checked against.
type anchor struct {
	origin    string
	verifiers note.Verifiers
	// published returns the latest checkpoint of a workspace on the
	// checkpoints topic (nil: not read).
	published func(ws string) ([]byte, bool)
}

// signedCheckpoint is a checkpoint whose signature verified.
type signedCheckpoint struct {
	size int64
	root tlog.Hash
}

// check verifies the latest checkpoint of the workspace, from ClickHouse
// and from the checkpoints topic (the larger one counts), and that the
// stored hashes give its root at its size, so the stored log of st.Size
// leaves extends it (loaded reads the right edge loaded with st). It
// returns the checkpoint's size (0 when none).
func (a *anchor) check(ctx context.Context, store Store, ws string, st State, loaded tlog.HashReader) (int64, error) {
	var texts [][]byte
	if st.Note != "" {
		texts = append(texts, []byte(st.Note))
	}
	if a.published != nil {
		if v, ok := a.published(ws); ok && len(v) > 0 {
			texts = append(texts, v)
		}
	}
	var best signedCheckpoint
	for _, text := range texts {
		cp, err := a.open(ws, text)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrTampered, ws, err)
		}
		if cp.size > best.size {
			best = cp
		}
	}
	if best.size == 0 {
		return 0, nil
	}
	if best.size > st.Size {
		return 0, fmt.Errorf("%w: %s has %d leaves stored, its checkpoint %d", ErrTampered, ws, st.Size, best.size)
	}
	// At the loaded size (every leaf signed, the usual case) the right
	// edge just loaded gives the root; below it, the stored hashes do.
	var r tlog.HashReader = store.ReadHashes(ctx, ws)
	if best.size == st.Size {
		r = loaded
	}
	root, err := tlog.TreeHash(best.size, r)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: the stored hashes of checkpoint %d: %v", ErrTampered, ws, best.size, err)
	}
	if root != best.root {
		return 0, fmt.Errorf("%w: %s: the stored hashes of the first %d leaves do not have the signed root", ErrTampered, ws, best.size)
	}
	return best.size, nil
}

func (a *anchor) open(ws string, text []byte) (signedCheckpoint, error) {
	n, err := note.Open(text, a.verifiers)
	if err != nil {
		return signedCheckpoint{}, fmt.Errorf("checkpoint signature: %v", err)
	}
	origin, size, root, err := ParseCheckpoint(n.Text)
	if err != nil {
		return signedCheckpoint{}, err
	}
	if origin != a.origin+"/"+ws {
		return signedCheckpoint{}, fmt.Errorf("checkpoint of %q, not of this workspace", origin)
	}
	return signedCheckpoint{size: size, root: root}, nil
}
