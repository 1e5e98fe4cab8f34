package deadletter

// Replay progress: a consumer group's committed offsets say how far a
// dead-letter topic was replayed. They are read and committed directly, so
// the replay joins no group and waits for no rebalance.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Group is the consumer group remembering how far a dead-letter topic was
// replayed. It never joins the group: it reads and commits its offsets.
type Group struct {
	adm         *kadm.Client
	name, topic string
}

// NewGroup returns the replay group name of topic, reached through cl.
func NewGroup(cl *kgo.Client, name, topic string) *Group {
	return &Group{adm: kadm.NewClient(cl), name: name, topic: topic}
}

// Replayed returns, per partition of the topic, the offset below which the
// group replayed the letters (its committed offsets; none for a group
// that never committed).
func (g *Group) Replayed(ctx context.Context) (map[int32]int64, error) {
	committed, err := g.adm.FetchOffsets(ctx, g.name)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // never replayed: every letter is outstanding
	}
	if err != nil {
		return nil, fmt.Errorf("fetch the offsets of group %s: %w", g.name, err)
	}
	replayed := map[int32]int64{}
	committed.Each(func(c kadm.OffsetResponse) {
		if c.Topic == g.topic && c.Err == nil && c.At > 0 {
			replayed[c.Partition] = c.At
		}
	})
	return replayed, nil
}

// Done commits that the group replayed letter l (and those before it in
// its partition).
func (g *Group) Done(ctx context.Context, l Letter) error {
	var offs kadm.Offsets
	offs.AddOffset(g.topic, l.Partition, l.Offset+1, -1)
	resp, err := g.adm.CommitOffsets(ctx, g.name, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("commit replay progress of group %s: %w", g.name, err)
	}
	return nil
}
