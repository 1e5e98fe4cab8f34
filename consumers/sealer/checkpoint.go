package sealer

// Checkpoints: a workspace's log size and root hash in the C2SP
// tlog-checkpoint text, signed as a note, stored in ClickHouse and
// published on the compacted checkpoints topic.

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// CheckpointText is the body of a checkpoint (C2SP tlog-checkpoint): the
// origin line <origin>/<workspace>, the tree size and the base64 root hash.
func CheckpointText(origin, ws string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s/%s\n%d\n%s\n", origin, ws, size, base64.StdEncoding.EncodeToString(root[:]))
}

// ParseCheckpoint reads the origin, size and root hash of a checkpoint
// body (extension lines after the root are allowed and ignored).
func ParseCheckpoint(text string) (origin string, size int64, root tlog.Hash, err error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return "", 0, root, fmt.Errorf("checkpoint: want origin, size and root hash lines")
	}
	if size, err = strconv.ParseInt(lines[1], 10, 64); err != nil || size < 0 {
		return "", 0, root, fmt.Errorf("checkpoint: size %q is not a count", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return "", 0, root, fmt.Errorf("checkpoint: root %q is not a base64 SHA-256 hash", lines[2])
	}
	copy(root[:], h)
	return lines[0], size, root, nil
}

// checkpoints signs a checkpoint of every log that grew since its last
// one, once CheckpointInterval passed since that one, stores them in one
// insert and then publishes them.
func (s *Sealer) checkpoints(ctx context.Context) {
	now := s.now()
	near := map[string]int64{}
	for _, t := range s.seq.trees {
		if t.size > t.signed && now.Sub(t.signedAt) >= s.cfg.CheckpointInterval {
			near[t.ws] = t.size
		}
	}
	if len(near) == 0 {
		return
	}
	// The fence again: sign only a log stored as this sealer holds it.
	stored, err := s.store.Sizes(ctx, near)
	if err != nil {
		s.m.errors.WithLabelValues("checkpoint").Inc()
		s.log.Warn("checkpoints not signed: the logs' sizes not read; retried at the next round", "err", err)
		return
	}
	var (
		due []*tree
		cps []migrations.Checkpoint
	)
	for ws, n := range near {
		t := s.seq.trees[ws]
		if stored[ws] != n {
			s.m.errors.WithLabelValues("fenced").Inc()
			s.log.Warn("checkpoint not signed: the stored log is not the one in memory; it is loaded again", "workspace", ws, "stored", stored[ws], "memory", n)
			delete(s.seq.trees, ws)
			continue
		}
		cp, err := s.sign(t, now)
		if err != nil {
			s.m.errors.WithLabelValues("checkpoint").Inc()
			s.log.Warn("checkpoint not signed; retried at the next round", "workspace", t.ws, "size", t.size, "err", err)
			continue
		}
		due, cps = append(due, t), append(cps, cp)
	}
	if len(cps) == 0 {
		return
	}
	if err := s.store.SaveCheckpoints(ctx, cps); err != nil {
		s.m.errors.WithLabelValues("checkpoint").Inc()
		s.log.Warn("checkpoints not stored; retried at the next round", "checkpoints", len(cps), "err", err)
		return
	}
	for i, t := range due {
		t.signed, t.signedAt = int64(cps[i].Size), now
		s.publish(ctx, cps[i])
	}
	s.m.checkpoints.Add(float64(len(cps)))
}

// sign returns the signed checkpoint of t's current size.
func (s *Sealer) sign(t *tree, now time.Time) (migrations.Checkpoint, error) {
	root, err := t.root()
	if err != nil {
		return migrations.Checkpoint{}, err
	}
	signed, err := note.Sign(&note.Note{Text: CheckpointText(s.cfg.Origin, t.ws, t.size, root)}, s.signer)
	if err != nil {
		return migrations.Checkpoint{}, fmt.Errorf("sign: %w", err)
	}
	return migrations.Checkpoint{WorkspaceID: t.ws, Size: uint64(t.size), Root: string(root[:]), Note: string(signed),
		KeyName: s.signer.Name(), SignedAt: now.UTC().Truncate(time.Second)}, nil
}

// publish produces a stored checkpoint on the checkpoints topic. It is
// published after it is stored, so a witness never sees a checkpoint
// ClickHouse lacks; one whose publication fails is superseded by the
// workspace's next one.
func (s *Sealer) publish(ctx context.Context, cp migrations.Checkpoint) {
	s.cl.Produce(ctx, &kgo.Record{Topic: s.cfg.CheckpointsTopic, Key: []byte(cp.WorkspaceID), Value: []byte(cp.Note)}, func(_ *kgo.Record, err error) {
		if err != nil {
			s.m.errors.WithLabelValues("publish").Inc()
			s.log.Warn("checkpoint stored but not published", "workspace", cp.WorkspaceID, "size", cp.Size, "err", err)
		}
	})
}
