package deadletter

// Reading: dead letters are read by offset, from the partitions directly,
// so that listing joins and moves no consumer group.

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Read calls fn for the letters of topic between the start offsets (or,
// for a partition in from, from[partition] when that is past its start)
// and the end offsets as of the call, in offset order within each
// partition. It consumes the partitions directly and joins no consumer
// group. It stops early when fn returns false, and returns ctx.Err() when
// ctx ends first.
func Read(ctx context.Context, brokerOpts []kgo.Opt, topic string, from map[int32]int64, fn func(Letter) bool) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, brokerOpts...), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	want, parts, err := toRead(ctx, kadm.NewClient(cl), topic, from)
	if err != nil || len(want) == 0 {
		return err
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts})
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
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			stop = !fn(FromRecord(r))
		})
		if stop {
			return nil
		}
	}
	return nil
}

// toRead returns, for each partition of topic with letters to read, the
// end offset seen now and the offset to start from.
func toRead(ctx context.Context, adm *kadm.Client, topic string, from map[int32]int64) (map[int32]int64, map[int32]kgo.Offset, error) {
	starts, err := listOffsets(ctx, adm.ListStartOffsets, "start", topic)
	if err != nil {
		return nil, nil, err
	}
	ends, err := listOffsets(ctx, adm.ListEndOffsets, "end", topic)
	if err != nil {
		return nil, nil, err
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(l kadm.ListedOffset) {
		begin := from[l.Partition]
		if s, ok := starts.Lookup(topic, l.Partition); ok {
			begin = max(begin, s.Offset)
		}
		if begin < l.Offset {
			want[l.Partition] = l.Offset
			parts[l.Partition] = kgo.NewOffset().At(begin)
		}
	})
	return want, parts, nil
}

// EndOffsets returns the end offset, seen now, of each partition of topic.
func EndOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := listOffsets(ctx, adm.ListEndOffsets, "end", topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	ends.Each(func(l kadm.ListedOffset) { out[l.Partition] = l.Offset })
	return out, nil
}

// listOffsets lists the ("start" or "end") offsets of topic's partitions.
func listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), which, topic string) (kadm.ListedOffsets, error) {
	offs, err := list(ctx, topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list %s offsets of %s: %w", which, topic, err)
	}
	return offs, nil
}
