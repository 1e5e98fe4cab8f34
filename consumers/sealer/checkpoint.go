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

// checkpoints signs, stores and publishes a checkpoint of every log that
// grew since its last one, once CheckpointInterval passed since that one.
func (s *Sealer) checkpoints(ctx context.Context) {
	now := s.now()
	for _, t := range s.seq.trees {
		if t.size <= t.signed || now.Sub(t.signedAt) < s.cfg.CheckpointInterval {
			continue
		}
		if err := s.checkpoint(ctx, t, now); err != nil {
			s.m.errors.WithLabelValues("checkpoint").Inc()
			s.log.Warn("checkpoint not signed; retried at the next round", "workspace", t.ws, "size", t.size, "err", err)
		}
	}
}

func (s *Sealer) checkpoint(ctx context.Context, t *tree, now time.Time) error {
	root, err := t.root()
	if err != nil {
		return err
	}
	signed, err := note.Sign(&note.Note{Text: CheckpointText(s.cfg.Origin, t.ws, t.size, root)}, s.signer)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	cp := migrations.Checkpoint{WorkspaceID: t.ws, Size: uint64(t.size), Root: string(root[:]), Note: string(signed),
		KeyName: s.signer.Name(), SignedAt: now.UTC().Truncate(time.Second)}
	if err := s.store.SaveCheckpoint(ctx, cp); err != nil {
		return err
	}
	t.signed, t.signedAt = t.size, now
	s.m.checkpoints.Inc()
	// Published after it is stored: a witness never sees a checkpoint
	// ClickHouse lacks. One whose publication fails is superseded by the
	// workspace's next one.
	s.cl.Produce(ctx, &kgo.Record{Topic: s.cfg.CheckpointsTopic, Key: []byte(t.ws), Value: signed}, func(_ *kgo.Record, err error) {
		if err != nil {
			s.m.errors.WithLabelValues("publish").Inc()
			s.log.Warn("checkpoint stored but not published", "workspace", t.ws, "size", cp.Size, "err", err)
		}
	})
	return nil
}
