package migrations

import (
	"fmt"
	"regexp"
	"strings"
)

// LocalSuffix ends the name of the per-node table behind a Distributed table
// on a cluster: audit_events_local holds the rows, audit_events routes them.
const LocalSuffix = "_local"

// ShardKey spreads rows over a cluster's shards. Every table is sharded by
// workspace: one workspace's events live on one shard, so copies of an event
// meet (and collapse) on the shard that stores them, and a workspace's reads
// are answered by that shard alone.
const ShardKey = "cityHash64(workspace_id)"

// ZooKeeperPath is the replication path of a sharded table; {shard} is a
// macro every node defines, database and table are filled in.
const ZooKeeperPath = "/clickhouse/tables/{shard}/%s/%s"

// OnCluster returns " ON CLUSTER <name>" when the schema lives on a cluster
// and "" on a single server, for DDL that must reach every node.
func (o Options) OnCluster() string {
	if o.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + o.Cluster
}

// StorageTable returns the name of the table that stores name's rows on each
// server: name itself on a single server, name+LocalSuffix on a cluster.
// Partition drops, TTL changes and system.parts lookups use it; inserts and
// reads use name.
func (o Options) StorageTable(name string) string {
	if o.Cluster == "" {
		return name
	}
	return name + LocalSuffix
}

// createTable renders the CREATE statements of one table of the schema; every
// migration that creates a table goes through it. columns is the
// parenthesised column list, engine the single-server engine of the
// MergeTree family (e.g. "ReplacingMergeTree()"), clauses what follows the
// engine (PARTITION BY, ORDER BY, TTL, SETTINGS).
//
// On a single server that is one CREATE TABLE. On a cluster it is two, both
// ON CLUSTER: the storage table name_local with the Replicated variant of
// engine (replication path ZooKeeperPath, replica '{replica}'), and name as a
// Distributed table over it sharded by ShardKey.
func (o Options) createTable(name, columns, engine, clauses string) []string {
	return o.createTableShardedBy(name, columns, engine, clauses, ShardKey)
}

// createTableShardedBy is createTable with another sharding expression,
// for a table not read by workspace (the offsets record).
func (o Options) createTableShardedBy(name, columns, engine, clauses, shardKey string) []string {
	if o.Cluster == "" {
		return []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s %s ENGINE = %s\n%s", o.Database, name, columns, engine, clauses)}
	}
	local := o.StorageTable(name)
	return []string{
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s %s ENGINE = %s\n%s", o.Database, local, o.OnCluster(), columns,
			replicated(engine, fmt.Sprintf(ZooKeeperPath, o.Database, name)), clauses),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s %s ENGINE = Distributed('%s', '%s', '%s', %s)", o.Database, name, o.OnCluster(), columns,
			o.Cluster, o.Database, local, shardKey),
	}
}

// everyNode renders the engine of a table that every server of a cluster
// holds in full (not sharded), such as schema_migrations: one replication
// path for the whole cluster, so {replica} must be unique across the cluster
// (the sample macros use the host name).
func (o Options) everyNode(engine, name string) string {
	if o.Cluster == "" {
		return engine
	}
	return replicated(engine, fmt.Sprintf("/clickhouse/tables/all/%s/%s", o.Database, name))
}

var mergeTreeEngine = regexp.MustCompile(`^(\w*MergeTree)\s*(?:\((.*)\))?$`)

// replicated turns a MergeTree-family engine into its Replicated variant,
// keeping the engine's own parameters after the path and replica name:
// ReplacingMergeTree(version) -> ReplicatedReplacingMergeTree('<path>',
// '{replica}', version). It panics on any other engine: the schema is
// code, and every migration is rendered in the tests.
func replicated(engine, path string) string {
	m := mergeTreeEngine.FindStringSubmatch(strings.TrimSpace(engine))
	if m == nil || strings.HasPrefix(m[1], "Replicated") {
		panic(fmt.Sprintf("migrations: cannot replicate engine %q: want a MergeTree-family engine such as ReplacingMergeTree()", engine))
	}
	args := fmt.Sprintf("'%s', '{replica}'", path)
	if p := strings.TrimSpace(m[2]); p != "" {
		args += ", " + p
	}
	return fmt.Sprintf("Replicated%s(%s)", m[1], args)
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// validate reports options the DDL cannot be built from.
func (o Options) validate() error {
	if o.RetentionDays < 1 {
		return fmt.Errorf("retention days must be at least 1, got %d", o.RetentionDays)
	}
	if o.Cluster != "" && !identifier.MatchString(o.Cluster) {
		return fmt.Errorf("cluster name %q: use letters, digits and underscores, as in remote_servers", o.Cluster)
	}
	return nil
}
