// Package verify checks a workspace's integrity log as an auditor would:
// an export against its signed manifest (offline), the stored rows of a
// workspace against its leaves, stored hashes and a checkpoint (online,
// against ClickHouse), and a stream of checkpoints against the last one
// seen (monitor: rollbacks and forks). Every check returns the problems
// it found, one sentence each, naming the row, leaf or checkpoint.
package verify

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a checkpoint whose signature was checked.
type Checkpoint struct {
	// Origin is the origin prefix; the note's origin line is
	// Origin/WorkspaceID.
	Origin      string
	WorkspaceID string
	Size        int64
	Root        tlog.Hash
	// Note is the signed note text; KeyName the key that signed it.
	Note    string
	KeyName string
	// Label says where the checkpoint came from, for messages.
	Label string `json:"-"`
}

// Verifiers returns the note verifiers of keys (verifier key strings).
func Verifiers(keys []string) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, k := range keys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, errors.New("no verifier key")
	}
	return note.VerifierList(vs...), nil
}

// SeparateKeys returns an error when a key is in both lists: a
// checkpoint key must never verify a manifest, nor the other way round.
func SeparateKeys(checkpointKeys, manifestKeys []string) error {
	ids := map[string]bool{}
	for _, k := range checkpointKeys {
		if v, err := note.NewVerifier(strings.TrimSpace(k)); err == nil {
			ids[fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())] = true
		}
	}
	for _, k := range manifestKeys {
		if v, err := note.NewVerifier(strings.TrimSpace(k)); err == nil && ids[fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())] {
			return fmt.Errorf("key %s+%08x is both a checkpoint and a manifest key: each key verifies one kind of note", v.Name(), v.KeyHash())
		}
	}
	return nil
}

// ErrBadCheckpoint means a note's text is not a tlog checkpoint.
var ErrBadCheckpoint = errors.New("not a tlog checkpoint")

// OpenCheckpoint checks a signed checkpoint note with the known keys and
// parses it (C2SP tlog-checkpoint: origin line, tree size, base64 root,
// optional extension lines). When origin is not empty the origin line
// must be origin/<workspace>. A note no known key signed is refused.
func OpenCheckpoint(msg []byte, known note.Verifiers, origin string) (Checkpoint, error) {
	n, err := note.Open(msg, known)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, fmt.Errorf("checkpoint signed by an unknown key (%s): refused", signerNames(unverified.Note))
		}
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	cp, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	cp.Note, cp.KeyName = string(msg), n.Sigs[0].Name
	if origin != "" && cp.Origin != origin {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, expected %q", ErrBadCheckpoint, cp.Origin, origin)
	}
	return cp, nil
}

// ParseCheckpoint parses a checkpoint's text (or a whole note: the text
// ends at the first blank line) without checking any signature: origin
// line, tree size, base64 root hash, optional extension lines.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return Checkpoint{}, ErrBadCheckpoint
	}
	cut := strings.LastIndexByte(lines[0], '/')
	if cut <= 0 || cut == len(lines[0])-1 {
		return Checkpoint{}, fmt.Errorf("%w: origin line %q is not <origin>/<workspace>", ErrBadCheckpoint, lines[0])
	}
	cp := Checkpoint{Origin: lines[0][:cut], WorkspaceID: lines[0][cut+1:]}
	var err error
	if cp.Size, err = strconv.ParseInt(lines[1], 10, 64); err != nil || cp.Size < 0 || lines[1] != strconv.FormatInt(cp.Size, 10) {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrBadCheckpoint, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q", ErrBadCheckpoint, lines[2])
	}
	copy(cp.Root[:], root)
	return cp, nil
}

// signerNames lists the key names (and hashes) that signed a note.
func signerNames(n *note.Note) string {
	var names []string
	for _, s := range append(n.Sigs, n.UnverifiedSigs...) {
		names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return strings.Join(names, ", ")
}
