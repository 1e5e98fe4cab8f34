package idwindow

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Moved workspaces. Producers key records by workspace and choose the
// partition with Kafka's murmur2 modulo the partition count (the emitter's
// Partitioner), so adding partitions to the events topic moves some
// workspaces to another partition. Their ids stored before the move sit in
// the registry under the old partition, which a consumer assigned the new
// one does not load (Recent reads one partition). Moved finds them.

// keyPartitioner is the producers' partitioner: for a keyed record it is
// murmur2 of the key with the sign bit cleared, modulo the partition count
// (Kafka's default; emitter.Partitioner is the same).
var keyPartitioner = kgo.StickyKeyPartitioner(nil)

// PartitionOf is the partition the producers put a workspace's records on
// when the topic has partitions partitions.
func PartitionOf(workspaceID string, partitions int) int32 {
	return int32(keyPartitioner.ForTopic("").Partition(&kgo.Record{Key: []byte(workspaceID)}, partitions))
}

// PartitionCount asks the brokers how many partitions topic has now.
// Cancelling ctx aborts the request.
func PartitionCount(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("partition count of %s: %w", topic, err)
	}
	d, ok := topics[topic]
	switch {
	case !ok:
		return 0, fmt.Errorf("partition count of %s: not in the metadata", topic)
	case d.Err != nil:
		return 0, fmt.Errorf("partition count of %s: %w", topic, d.Err)
	}
	return len(d.Partitions), nil
}

// Moved returns the ids stored since a time from other partitions of
// topic by workspaces that the producers now key to one of assigned (the
// topic having partitions partitions): the ids of workspaces moved there
// by a partition-count increase. From each old partition it returns the
// newest max of them (all when max is 0), oldest first. It reads every
// (workspace, partition) pair registered within the window (two columns of
// the registry), then only the moved workspaces' ids. Cancelling ctx aborts
// the query and returns its error.
func (r *Registry) Moved(ctx context.Context, topic string, partitions int, assigned []int32, since time.Time, max int) ([]StoredID, error) {
	since = since.UTC().Truncate(time.Second)
	rows, err := r.conn.Query(ctx, r.homes, topic, since)
	if err != nil {
		return nil, fmt.Errorf("read registered workspaces: %w", err)
	}
	moved := map[uint32][]string{} // old partition -> workspaces now elsewhere
	for rows.Next() {
		var (
			ws   string
			part uint32
		)
		if err := rows.Scan(&ws, &part); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read registered workspaces: %w", err)
		}
		if now := PartitionOf(ws, partitions); uint32(now) != part && slices.Contains(assigned, now) {
			moved[part] = append(moved[part], ws)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read registered workspaces: %w", err)
	}
	var out []StoredID
	for part, wss := range moved {
		ids, err := r.MovedFrom(ctx, topic, int32(part), wss, since, max)
		if err != nil {
			return nil, err
		}
		out = append(out, ids...)
	}
	return out, nil
}

// MovedFrom returns the newest max ids (all when max is 0) that workspaces
// wss stored from partition part of topic since a time, oldest first.
// Cancelling ctx aborts the query and returns its error.
func (r *Registry) MovedFrom(ctx context.Context, topic string, part int32, wss []string, since time.Time, max int) ([]StoredID, error) {
	limit := uint64(max)
	if max <= 0 {
		limit = 1 << 62
	}
	rows, err := r.conn.Query(ctx, r.movedIDs, topic, uint32(part), since.UTC().Truncate(time.Second), wss, limit)
	if err != nil {
		return nil, fmt.Errorf("read moved workspaces' ids: %w", err)
	}
	out, err := scanIDs(rows, topic, part)
	if err != nil {
		return nil, fmt.Errorf("read moved workspaces' ids: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// PartitionCounts records that topic has partitions partitions now and
// returns its recorded counts, oldest first (see History.Observe).
func (r *Registry) PartitionCounts(ctx context.Context, topic string, partitions int, now time.Time) ([]Count, error) {
	return r.counts.Observe(ctx, topic, partitions, now)
}
