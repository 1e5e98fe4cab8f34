package deadletter

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Replay publishes the original record of each letter to topic (the events
// topic) and waits for the acknowledgements. The replayed record carries
// the original key, value and headers plus dlq_replayed_from naming the
// dead letter in dlqTopic.
func Replay(ctx context.Context, cl *kgo.Client, topic string, dlqTopic string, letters []Letter) error {
	recs := make([]*kgo.Record, len(letters))
	for i, l := range letters {
		headers := append(append([]kgo.RecordHeader{}, l.Headers...), kgo.RecordHeader{
			Key: HeaderReplayedFrom, Value: fmt.Appendf(nil, "%s/%d/%d", dlqTopic, l.Partition, l.Offset)})
		recs[i] = &kgo.Record{Topic: topic, Key: l.Key, Value: l.Value, Headers: headers}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("replay %d records to %s: %w", len(recs), topic, err)
	}
	return nil
}
