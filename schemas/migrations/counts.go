package migrations

// The partition counts of the events topic the consumers have seen.

import (
	"fmt"
	"time"
)

// PartitionCountsTable records the partition counts of the events topic the
// consumers have seen, each with when it was first noticed: after an
// increase, a workspace's records may sit on the partition the old count
// keyed it to (see consumers/handover). A few rows per topic.
const PartitionCountsTable = "audit_partition_counts"

// PartitionCounts declares PartitionCountsTable.
var PartitionCounts = newTable(PartitionCountsTable,
	column("topic", "String", func(c *PartitionCount) *string { return &c.Topic }),
	column("partitions", "UInt32", func(c *PartitionCount) *uint32 { return &c.Partitions }),
	column("noticed_at", "DateTime('UTC')", func(c *PartitionCount) *time.Time { return &c.NoticedAt }),
)

// PartitionCount is a row of PartitionCountsTable: topic had partitions
// partitions at noticed_at.
type PartitionCount struct {
	Topic      string
	Partitions uint32
	NoticedAt  time.Time
}

// createPartitionCounts creates PartitionCountsTable. It is tiny and read
// whole, so on a cluster every node holds a replica of it (no shards).
func createPartitionCounts(o Options, _ Version) []string {
	return []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s%s %s ENGINE = %s ORDER BY (topic, partitions)`,
		o.Database, PartitionCountsTable, o.OnCluster(), PartitionCounts.definition(),
		o.everyNode("ReplacingMergeTree()", PartitionCountsTable))}
}
