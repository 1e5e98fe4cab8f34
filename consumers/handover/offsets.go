package handover

// The Offsets a consumer reads from the Kafka cluster it consumes.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaOffsets reads offsets through a consumer's client. It is made
// before the client (whose group callbacks may use the gate as soon as it
// exists) and bound to it after; reads before Bind fail.
type KafkaOffsets struct{ adm atomic.Pointer[kadm.Client] }

// Bind makes k read through cl (which stays the caller's to close).
func (k *KafkaOffsets) Bind(cl *kgo.Client) { k.adm.Store(kadm.NewClient(cl)) }

var errUnbound = errors.New("offsets: no Kafka client bound yet")

func (k *KafkaOffsets) client() (*kadm.Client, error) {
	if a := k.adm.Load(); a != nil {
		return a, nil
	}
	return nil, errUnbound
}

// Ends implements Offsets.
func (k *KafkaOffsets) Ends(ctx context.Context, topic string, parts []int32) (map[int32]int64, error) {
	adm, err := k.client()
	if err != nil {
		return nil, err
	}
	listed, err := adm.ListEndOffsets(ctx, topic)
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
	adm, err := k.client()
	if err != nil {
		return nil, err
	}
	resp, err := adm.FetchOffsetsForTopics(ctx, group, topic)
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
