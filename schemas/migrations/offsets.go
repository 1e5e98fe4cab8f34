package migrations

// The offsets record (migration 9): per Kafka record the writer consumed,
// what it did with it, ordered by (topic, partition, offset) so that the
// sealer reads exactly the offsets of its round (docs/integrity.md).

import (
	"fmt"
	"time"
)

// OffsetsTable records, per (topic, partition, offset) of the events
// topic, what the writer did with the record: stored it (with the key and
// the received_at_ns of the row it stored), or not (dead-lettered,
// expired on arrival, a duplicate or a conflicting version of an id in its
// id window). The sealer reads a
// round's offsets from it, one index range per partition, instead of
// reading the stored rows back from the events table by key.
const OffsetsTable = "audit_event_offsets"

// Outcomes of a record in OffsetsTable.
const (
	// OutcomeStored: the record's row is in the events table.
	OutcomeStored uint8 = 0
	// OutcomeDeadLettered: undecodable or invalid, parked in the dead
	// letters; no row.
	OutcomeDeadLettered uint8 = 1
	// OutcomeExpired: older than its workspace's window on arrival; no
	// row.
	OutcomeExpired uint8 = 2
	// OutcomeDuplicate: its key (id and timestamp) was already stored
	// (the writer's id window); no row of its own.
	OutcomeDuplicate uint8 = 3
	// OutcomeConflict: its id was already stored with another timestamp
	// (the writer's id window); its key is not stored.
	OutcomeConflict uint8 = 4
)

// StoredOffset is a row of OffsetsTable. For a record not stored, the key
// fields are empty.
type StoredOffset struct {
	Topic        string
	Partition    int32
	Offset       int64
	StoredAt     time.Time
	Outcome      uint8
	WorkspaceID  string
	ID           string
	TimestampNs  int64
	ReceivedAtNs int64
}

// Offsets declares OffsetsTable. The offset column is named
// kafka_offset: OFFSET is a keyword of the LIMIT clause.
var Offsets = newTable(OffsetsTable,
	column("topic", "String", func(s *StoredOffset) *string { return &s.Topic }),
	converted("partition", "UInt32", func(s *StoredOffset) uint32 { return uint32(s.Partition) }),
	column("kafka_offset", "Int64", func(s *StoredOffset) *int64 { return &s.Offset }),
	column("stored_at", "DateTime('UTC')", func(s *StoredOffset) *time.Time { return &s.StoredAt }),
	column("outcome", "UInt8", func(s *StoredOffset) *uint8 { return &s.Outcome }),
	column("workspace_id", "String", func(s *StoredOffset) *string { return &s.WorkspaceID }),
	column("id", "String", func(s *StoredOffset) *string { return &s.ID }),
	column("timestamp_ns", "Int64", func(s *StoredOffset) *int64 { return &s.TimestampNs }),
	column("received_at_ns", "Int64", func(s *StoredOffset) *int64 { return &s.ReceivedAtNs }),
)

// OffsetsRetentionDays is how many days of OffsetsTable are kept (by
// stored_at): a sealer lagging the writer by more reads the older
// offsets' rows back from the events table instead.
const OffsetsRetentionDays = 7

// createOffsets creates OffsetsTable: a plain MergeTree, since a record
// replayed after a writer crash may have two rows with different outcomes
// (stored, then a duplicate of itself) and the reader needs both to pick
// the stored one. Day partitions by stored_at make its retention a
// partition drop on 18.16 (the retention job) and a TTL on newer servers.
// Its index granularity is offsetsGranularity.
func createOffsets(o Options, v Version) []string {
	ttl := ""
	if v.SupportsTTL() {
		ttl = fmt.Sprintf("\nTTL stored_at + toIntervalDay(%d)", OffsetsRetentionDays)
	}
	return o.createTableShardedBy(OffsetsTable, Offsets.definition(), "MergeTree()", `PARTITION BY toYYYYMMDD(stored_at)
ORDER BY (topic, partition, kafka_offset)`+ttl+fmt.Sprintf("\nSETTINGS index_granularity = %d", offsetsGranularity), OffsetsShardKey)
}

// OffsetsShardKey spreads OffsetsTable over a cluster's shards by Kafka
// partition, not by workspace: every copy of an offset is on one shard
// (a record not stored has no workspace), a round's lookup of a partition
// reads one shard, and a writer's batch makes a part only on the shards
// of its partitions.
const OffsetsShardKey = "cityHash64(topic, partition)"

// offsetsGranularity is OffsetsTable's index granularity: a round's
// lookup reads, in each part it touches, whole granules around its
// offsets, and a writer's batch spreads over every partition, so with
// the default 8,192 rows a round read about twice its records; 1,024
// brings it near its own rows (the index: a key per 1,024 rows, about
// 30 MB for 1 billion records kept).
const offsetsGranularity = 1024
