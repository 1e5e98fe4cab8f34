package migrations

// The id registry: the id of every stored event, by Kafka partition.

import (
	"fmt"
	"time"
)

// IDsTable is the id registry: the (workspace_id, id) of every stored
// event with the Kafka partition it came from and when it was stored. A
// writer that takes over a partition reads the partition's recent ids from
// it to rebuild its idempotency window (see consumers/writer). Ordered by
// (topic, partition, stored_at), that read is one index range.
const IDsTable = "audit_event_ids"

// EventIDs declares the id registry.
var EventIDs = newTable(IDsTable,
	column("topic", "String", func(s *StoredID) *string { return &s.Topic }),
	converted("partition", "UInt32", func(s *StoredID) uint32 { return uint32(s.Partition) }),
	column("stored_at", "DateTime('UTC')", func(s *StoredID) *time.Time { return &s.StoredAt }),
	column("workspace_id", "String", func(s *StoredID) *string { return &s.WorkspaceID }),
	column("id", "String", func(s *StoredID) *string { return &s.ID }),
	column("timestamp_ns", "Int64", func(s *StoredID) *int64 { return &s.TimestampNs }),
)

// StoredID is one stored event's id: a row of the id registry (see
// EventIDs).
type StoredID struct {
	Topic       string
	Partition   int32
	StoredAt    time.Time
	WorkspaceID string
	ID          string
	TimestampNs int64
}

// IDsRetentionDays is how long the id registry keeps its rows for a
// retention window of retentionDays: one day longer than the events, since
// an event may carry a timestamp up to a day ahead of when it was stored and
// stays visible until that timestamp leaves the window. Whole days past it
// are dropped. It bounds the writer's idempotency window.
func IDsRetentionDays(retentionDays int) int { return retentionDays + 1 }

// createEventIDs creates the id registry. Day partitions by stored_at make
// its retention (IDsRetentionDays) a partition drop.
func createEventIDs(o Options, v Version) []string {
	ttl := ""
	if v.SupportsTTL() {
		ttl = "\n" + registryTTL(o.RetentionDays)
	}
	return o.createTable(IDsTable, EventIDs.definition(), "MergeTree()", `PARTITION BY toYYYYMMDD(stored_at)
ORDER BY (topic, partition, stored_at)`+ttl)
}

// registryTTL is the id registry's TTL clause for a retention window.
func registryTTL(days int) string {
	return fmt.Sprintf("TTL stored_at + toIntervalDay(%d)", IDsRetentionDays(days))
}
