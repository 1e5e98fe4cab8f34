package migrations

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReplicatedEngine(t *testing.T) {
	for engine, want := range map[string]string{
		"ReplacingMergeTree()":         "ReplicatedReplacingMergeTree('/p', '{replica}')",
		"ReplacingMergeTree":           "ReplicatedReplacingMergeTree('/p', '{replica}')",
		"ReplacingMergeTree(version)":  "ReplicatedReplacingMergeTree('/p', '{replica}', version)",
		"MergeTree()":                  "ReplicatedMergeTree('/p', '{replica}')",
		" SummingMergeTree((a, b)) ":   "ReplicatedSummingMergeTree('/p', '{replica}', (a, b))",
		"CollapsingMergeTree( sign )":  "ReplicatedCollapsingMergeTree('/p', '{replica}', sign)",
		"AggregatingMergeTree()":       "ReplicatedAggregatingMergeTree('/p', '{replica}')",
		"VersionedCollapsingMergeTree": "ReplicatedVersionedCollapsingMergeTree('/p', '{replica}')",
	} {
		require.Equal(t, want, replicated(engine, "/p"), engine)
	}
	for _, bad := range []string{"Log", "Memory()", "ReplicatedMergeTree('/x', 'r')", "Distributed(c, db, t)"} {
		require.Panics(t, func() { replicated(bad, "/p") }, bad)
	}
}

// statements renders every migration for a server version.
func statements(o Options, v Version) []string {
	var out []string
	for _, m := range All() {
		out = append(out, m.Statements(o, v)...)
	}
	return out
}

var createdTable = regexp.MustCompile(`^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)( ON CLUSTER (\w+))? \(`)

func TestSingleServerDDLHasNoClusterParts(t *testing.T) {
	o := Options{Database: "audittrail", RetentionDays: 90}
	for _, v := range []Version{{18, 16}, {24, 8}} {
		for _, s := range append(Prepare(o), statements(o, v)...) {
			require.NotContains(t, s, "ON CLUSTER")
			require.NotContains(t, s, "Replicated")
			require.NotContains(t, s, "Distributed")
			require.NotContains(t, s, LocalSuffix)
		}
	}
	require.Equal(t, "", o.OnCluster())
	require.Equal(t, Table, o.StorageTable(Table))
}

// TestClusterDDL checks the cluster variant of every table every migration
// creates: a replicated storage table on every node and a Distributed table
// sharded by workspace under the plain name, with the same columns.
func TestClusterDDL(t *testing.T) {
	o := Options{Database: "audittrail", RetentionDays: 90, Cluster: "audit"}
	require.Equal(t, " ON CLUSTER audit", o.OnCluster())
	require.Equal(t, "audit_events_local", o.StorageTable(Table))

	for _, v := range []Version{{18, 16}, {24, 8}} {
		var stmts []string // the CREATEs; TestAddedColumnsDDL checks the ALTERs
		for _, m := range All() {
			if len(m.Adds) == 0 && m.Run == nil {
				stmts = append(stmts, m.Statements(o, v)...)
			}
		}
		// Migration 5: the lookup tables are like every table; the new
		// events table is a storage table only, renamed into place under
		// the Distributed audit_events, and the views go from storage
		// table to storage table on every node.
		stmts = append(stmts, createLookups(o, v)...)
		next := createNext(o, v)
		require.Len(t, next, 1)
		require.Contains(t, next[0], "CREATE TABLE audittrail.audit_events_v5_local ON CLUSTER audit (")
		require.Contains(t, next[0], "PARTITION BY toUInt32(toMonday(timestamp))\nORDER BY (workspace_id, timestamp_ns, id)")
		require.Equal(t, []string{"RENAME TABLE audittrail.audit_events_local TO audittrail.audit_events_v4_local, audittrail.audit_events_v5_local TO audittrail.audit_events_local ON CLUSTER audit",
			"CREATE TABLE IF NOT EXISTS audittrail.audit_events_v4 ON CLUSTER audit AS audittrail.audit_events_v4_local ENGINE = Distributed('audit', 'audittrail', 'audit_events_v4_local', cityHash64(workspace_id))"}, swapStatements(o, false),
			"readers reach the days not moved yet through a Distributed audit_events_v4")
		for _, view := range createViews(o) {
			require.Regexp(t, `^CREATE MATERIALIZED VIEW IF NOT EXISTS audittrail\.\w+_mv ON CLUSTER audit TO audittrail\.\w+_local AS SELECT .* FROM audittrail\.audit_events_local$`, view)
		}
		local := map[string]string{}   // table -> statement
		frontal := map[string]string{} // Distributed table -> statement
		everyNode := map[string]string{}
		for _, s := range stmts {
			m := createdTable.FindStringSubmatch(s)
			require.NotNil(t, m, "every statement creates a table: %s", s)
			require.Equal(t, "audittrail", m[1])
			require.Equal(t, "audit", m[4], "ON CLUSTER audit: %s", s)
			switch {
			case m[2] == PartitionCountsTable || m[2] == RetentionTable:
				everyNode[m[2]] = s
			case strings.HasSuffix(m[2], LocalSuffix):
				local[strings.TrimSuffix(m[2], LocalSuffix)] = s
			default:
				frontal[m[2]] = s
			}
		}
		// The partition counts are a few rows every node holds whole.
		require.Contains(t, everyNode[PartitionCountsTable],
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/audittrail/"+PartitionCountsTable+"', '{replica}') ORDER BY (topic, partitions)")
		// So are the retention policies, read whole by every reader.
		require.Contains(t, everyNode[RetentionTable],
			"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/audittrail/"+RetentionTable+"', '{replica}', version) ORDER BY workspace_id")
		require.NotEmpty(t, local)
		require.Equal(t, len(local), len(frontal), "one Distributed table per storage table")
		for name, s := range local {
			d, ok := frontal[name]
			require.True(t, ok, "%s has a Distributed table", name)
			require.Contains(t, s, "ENGINE = Replicated")
			require.Contains(t, s, "MergeTree('/clickhouse/tables/{shard}/audittrail/"+name+"', '{replica}'")
			shardKey := ShardKey
			if name == OffsetsTable { // read by Kafka partition, not by workspace
				shardKey = OffsetsShardKey
			}
			require.Contains(t, d, "ENGINE = Distributed('audit', 'audittrail', '"+name+LocalSuffix+"', "+shardKey+")")
			require.NotContains(t, d, "PARTITION BY")
			require.NotContains(t, d, "TTL")
			// Same column list on both.
			cols := func(s string) string { return s[strings.Index(s, "(") : strings.Index(s, ") ENGINE")+1] }
			require.Equal(t, cols(s), cols(d), name)
			require.Contains(t, cols(s), "workspace_id String", "the shard key's column exists")
		}
		events := local[Table]
		require.Contains(t, events, "ReplicatedReplacingMergeTree(")
		require.Contains(t, events, "PARTITION BY toYYYYMMDD(timestamp)")
		require.Contains(t, events, "ORDER BY (workspace_id, timestamp_ns, id)")
		if v.SupportsTTL() {
			require.Contains(t, events, "TTL timestamp + toIntervalDay(90)")
		} else {
			require.NotContains(t, events, "TTL")
		}
	}

	prep := Prepare(o)
	require.Equal(t, "CREATE DATABASE IF NOT EXISTS audittrail ON CLUSTER audit", prep[0])
	require.Contains(t, prep[1], "CREATE TABLE IF NOT EXISTS audittrail.schema_migrations ON CLUSTER audit (")
	require.Contains(t, prep[1], "ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/audittrail/schema_migrations', '{replica}') ORDER BY version")
}

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, Options{Database: "a", RetentionDays: 1}.validate())
	require.NoError(t, Options{Database: "a", RetentionDays: 1, Cluster: "audit_1"}.validate())
	require.ErrorContains(t, Options{Database: "a", RetentionDays: 0}.validate(), "retention days")
	for _, bad := range []string{"a b", "x;DROP", "1abc", "a-b", strings.Repeat("a", 65)} {
		require.ErrorContains(t, Options{Database: "a", RetentionDays: 1, Cluster: bad}.validate(), "cluster name", bad)
	}
}
