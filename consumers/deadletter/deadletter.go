// Package deadletter reads the writer's dead-letter topic and replays its
// records. Each dead letter keeps the original key, value and headers and
// adds the reason and the source topic, partition and offset (see package
// topics). Replaying publishes the original record again to the events
// topic, where the writer treats it as new input: a record that is still
// poison is dead-lettered again, and a record that was already stored is
// collapsed with its stored copy, so replaying is always safe.
package deadletter

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/schemas/topics"
)

// Letter is one dead-lettered record.
type Letter struct {
	Partition int32  // in the dead-letter topic
	Offset    int64  // in the dead-letter topic
	Reason    string // the dlq_reason header
	// SourceTopic, SourcePartition and SourceOffset locate the original.
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	Key, Value      []byte
	Headers         []kgo.RecordHeader // original headers, without the dlq_* ones
}

// FromRecord reads a dead-letter record.
func FromRecord(r *kgo.Record) Letter {
	l := Letter{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case topics.HeaderDLQReason:
			l.Reason = v
		case topics.HeaderDLQTopic:
			l.SourceTopic = v
		case topics.HeaderDLQPartition:
			p, _ := strconv.ParseInt(v, 10, 32)
			l.SourcePartition = int32(p)
		case topics.HeaderDLQOffset:
			l.SourceOffset, _ = strconv.ParseInt(v, 10, 64)
		default:
			l.Headers = append(l.Headers, h)
		}
	}
	return l
}

// Read calls fn for every record in topic, from the start to the end
// offsets as of the call, in partition order. It stops early when fn
// returns false or ctx ends.
func Read(ctx context.Context, brokerOpts []kgo.Opt, topic string, fn func(Letter) bool) error {
	admCl, err := kgo.NewClient(brokerOpts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{} // partition -> end offset still to reach
	parts := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		start, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > start.Offset {
			want[o.Partition] = o.Offset
			parts[topic][o.Partition] = kgo.NewOffset().At(start.Offset)
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, brokerOpts...), kgo.ConsumePartitions(parts))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return fmt.Errorf("read %s: %w", topic, errs[0].Err)
		}
		stop := false
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if stop || !ok || r.Offset >= end {
				return
			}
			if !fn(FromRecord(r)) {
				stop = true
				return
			}
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
		if stop {
			return nil
		}
	}
	return nil
}

// Replay publishes the original record of each letter to topic (the events
// topic) and waits for the acknowledgements. The replayed record carries
// the original key, value and headers plus dlq_replayed_from naming the
// dead letter.
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

// HeaderReplayedFrom names the dead letter a replayed record came from
// ("topic/partition/offset").
const HeaderReplayedFrom = "dlq_replayed_from"
