package migrations

// The integrity log: per workspace, the leaves (one per stored event), the
// tlog stored hashes of its Merkle tree and its signed checkpoints (see
// docs/integrity.md).

import "time"

// Names of the integrity log's tables.
const (
	// LeavesTable holds one row per leaf: the stored event it covers,
	// named by the events table's key (workspace_id, timestamp_ns, id),
	// and its leaf hash. Day partitions by the event's timestamp, as the
	// events table's, so that the retention job drops a day's leaves with
	// its events.
	LeavesTable = "audit_log_leaves"
	// HashesTable holds the tlog stored hashes of each workspace's tree,
	// numbered by tlog.StoredHashIndex. level is the hash's level in the
	// tree (0 for a leaf hash): retention deletes the levels below a tile
	// (8) of tiles whose events all expired, and keeps the rest.
	HashesTable = "audit_log_hashes"
	// CheckpointsTable holds every signed checkpoint: a workspace's tree
	// size, root hash and the full signed note.
	CheckpointsTable = "audit_log_checkpoints"
)

// Leaves declares LeavesTable.
var Leaves = newTable(LeavesTable,
	column("workspace_id", "String", func(l *Leaf) *string { return &l.WorkspaceID }),
	column("leaf_index", "UInt64", func(l *Leaf) *uint64 { return &l.Index }),
	column("timestamp_ns", "Int64", func(l *Leaf) *int64 { return &l.TimestampNs }),
	column("id", "String", func(l *Leaf) *string { return &l.ID }),
	column("leaf_hash", "FixedString(32)", func(l *Leaf) *string { return &l.Hash }),
	column("sealed_at", "DateTime('UTC')", func(l *Leaf) *time.Time { return &l.SealedAt }),
)

// Leaf is a row of LeavesTable: leaf Index of WorkspaceID's log covers
// the stored event (WorkspaceID, TimestampNs, ID). Hash holds the 32
// bytes of the leaf hash.
type Leaf struct {
	WorkspaceID string
	Index       uint64
	TimestampNs int64
	ID          string
	Hash        string
	SealedAt    time.Time
}

// Hashes declares HashesTable.
var Hashes = newTable(HashesTable,
	column("workspace_id", "String", func(h *StoredHash) *string { return &h.WorkspaceID }),
	column("hash_index", "UInt64", func(h *StoredHash) *uint64 { return &h.Index }),
	column("hash", "FixedString(32)", func(h *StoredHash) *string { return &h.Hash }),
	column("level", "UInt8", func(h *StoredHash) *uint8 { return &h.Level }),
)

// StoredHash is a row of HashesTable: the stored hash Index (in
// tlog.StoredHashIndex numbering) of WorkspaceID's tree, at Level. Hash
// holds its 32 bytes.
type StoredHash struct {
	WorkspaceID string
	Index       uint64
	Hash        string
	Level       uint8
}

// Checkpoints declares CheckpointsTable.
var Checkpoints = newTable(CheckpointsTable,
	column("workspace_id", "String", func(c *Checkpoint) *string { return &c.WorkspaceID }),
	column("size", "UInt64", func(c *Checkpoint) *uint64 { return &c.Size }),
	column("root", "FixedString(32)", func(c *Checkpoint) *string { return &c.Root }),
	column("note", "String", func(c *Checkpoint) *string { return &c.Note }),
	column("key_name", "String", func(c *Checkpoint) *string { return &c.KeyName }),
	column("signed_at", "DateTime('UTC')", func(c *Checkpoint) *time.Time { return &c.SignedAt }),
)

// Checkpoint is a row of CheckpointsTable: WorkspaceID's tree of Size
// leaves had root hash Root (32 bytes); Note is the signed note text
// (C2SP tlog-checkpoint), signed by the key KeyName at SignedAt.
type Checkpoint struct {
	WorkspaceID string
	Size        uint64
	Root        string
	Note        string
	KeyName     string
	SignedAt    time.Time
}

// LeafPartition is LeavesTable's partition key: the UTC day of the
// event's timestamp, as the events table's toYYYYMMDD(timestamp).
const LeafPartition = "toYYYYMMDD(toDateTime(intDiv(timestamp_ns, 1000000000), 'UTC'))"

// createLog creates the integrity log's tables. All are
// ReplacingMergeTrees, since a replay after a crash inserts equal rows
// again; readers collapse unmerged copies (LIMIT 1 BY the key).
func createLog(o Options, _ Version) []string {
	var out []string
	out = append(out, o.createTable(LeavesTable, Leaves.definition(), "ReplacingMergeTree()",
		"PARTITION BY "+LeafPartition+"\nORDER BY (workspace_id, leaf_index)")...)
	out = append(out, o.createTable(HashesTable, Hashes.definition(), "ReplacingMergeTree()",
		"ORDER BY (workspace_id, hash_index)")...)
	out = append(out, o.createTable(CheckpointsTable, Checkpoints.definition(), "ReplacingMergeTree()",
		"ORDER BY (workspace_id, size)")...)
	return out
}
