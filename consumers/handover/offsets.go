package handover

// The Offsets a consumer reads from the Kafka cluster it consumes.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaOffsets reads offsets through a consumer's client.
type KafkaOffsets struct{ adm *kadm.Client }

// NewKafkaOffsets returns Offsets read through cl (which stays the caller's
// to close).
func NewKafkaOffsets(cl *kgo.Client) *KafkaOffsets { return &KafkaOffsets{adm: kadm.NewClient(cl)} }

// Ends implements Offsets.
func (k *KafkaOffsets) Ends(ctx context.Context, topic string, parts []int32) (map[int32]int64, error) {
	listed, err := k.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if o, ok := listed.Lookup(topic, p); ok {
			out[p] = o.Offset
		}
	}
	return out, nil
}

// Committed implements Offsets.
func (k *KafkaOffsets) Committed(ctx context.Context, group, topic string, parts []int32) (map[int32]int64, error) {
	resp, err := k.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	out := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if o, ok := resp.Lookup(topic, p); ok && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out, nil
}
