package config

// The variables several services share: where Kafka and ClickHouse are, the
// topics, the retention window and the network trust settings.

import (
	"time"

	"github.com/audittrail/audittrail/schemas/topics"
)

const (
	allServices = "all services"
	chReaders   = "writer, forwarder, api, migrate"
)

// Kafka.
var (
	KafkaBrokers = declare(List{Var: Var{Name: "AUDITTRAIL_KAFKA_BROKERS", Readers: allServices,
		Doc: "Kafka bootstrap brokers, comma-separated", Accepts: "host:port[,host:port...]"},
		Default: "127.0.0.1:9092", Required: true})
	KafkaTopic = declare(String{Var: Var{Name: "AUDITTRAIL_KAFKA_TOPIC", Readers: allServices,
		Doc: "topic the events are published to and consumed from", Accepts: "a topic name (no spaces or slashes)"},
		Default: topics.Events, Required: true})
	KafkaPartitions = declare(Int{Var: Var{Name: "AUDITTRAIL_KAFKA_PARTITIONS", Readers: allServices,
		Doc: "partition count used when a topic is created"},
		Default: topics.DefaultPartitions, Min: 1, Max: 10_000})
	SettingsTopic = declare(String{Var: Var{Name: "AUDITTRAIL_SETTINGS_TOPIC", Readers: "api, forwarder, dlq",
		Doc: "compacted topic holding workspaces' forwarding settings", Accepts: "a topic name"},
		Default: topics.Settings})
	CredentialsTopic = declare(String{Var: Var{Name: "AUDITTRAIL_CREDENTIALS_TOPIC", Readers: "ingest, credentials",
		Doc: "compacted topic holding the producer credentials (the ingest gateway reads it, the credentials command writes it); the gateway is ready once it has read it", Accepts: "a topic name"},
		Default: topics.Credentials})
)

// ClickHouse.
var (
	ClickHouseAddr = declare(String{Var: Var{Name: "AUDITTRAIL_CLICKHOUSE_ADDR", Readers: chReaders,
		Doc: "ClickHouse native protocol host:port", Accepts: "host:port of the native protocol, e.g. 127.0.0.1:9000"},
		Default: "127.0.0.1:9000", Required: true})
	ClickHouseDatabase = declare(String{Var: Var{Name: "AUDITTRAIL_CLICKHOUSE_DATABASE", Readers: chReaders,
		Doc: "ClickHouse database (created when missing)", Accepts: "letters, digits and underscores"},
		Default: "audittrail"})
	ClickHouseUser = declare(String{Var: Var{Name: "AUDITTRAIL_CLICKHOUSE_USER", Readers: chReaders,
		Doc: "ClickHouse user", Accepts: "a user name"},
		Default: "default"})
	ClickHousePassword = declare(String{Var: Var{Name: "AUDITTRAIL_CLICKHOUSE_PASSWORD", Readers: chReaders,
		Doc: "ClickHouse password", Accepts: "any text"}})
	ClickHouseCompression = declare(String{Var: Var{Name: "AUDITTRAIL_CLICKHOUSE_COMPRESSION", Readers: chReaders,
		Doc: "native protocol block compression: auto (none for a loopback address, lz4 otherwise), lz4, zstd or none"},
		Default: "auto", Values: []string{"auto", "lz4", "zstd", "none"}})
	ClickHouseCluster = declare(String{Var: Var{Name: "AUDITTRAIL_CLICKHOUSE_CLUSTER", Readers: chReaders,
		Doc:     "ClickHouse cluster (remote_servers name) the schema is created on: replicated tables behind Distributed ones; empty for a single server",
		Accepts: "the cluster's name from remote_servers (letters, digits and underscores)"}})
	// MigrateAtStart's name is migrations.MigrateAtStartVar, which the
	// schema check's message names.
	MigrateAtStart = declare(Bool{Var: Var{Name: "AUDITTRAIL_MIGRATE_AT_START", Readers: "writer, sealer",
		Doc: "apply pending ClickHouse schema migrations at start; false: only check that every migration this release needs is recorded and refuse to start, naming the missing ones, when not (run migrate first; for a ClickHouse user without DDL rights)"},
		Default: true})
)

// Retention.
var (
	RetentionDays = declare(Int{Var: Var{Name: "AUDITTRAIL_RETENTION_DAYS", Readers: chReaders + ", sealer",
		Doc: "retention window in days (the sealer also stores the leaves of events older than it in the long-term leaves table)"},
		Default: 90, Min: 1, Max: 3650})
	RetentionInterval = declare(Duration{Var: Var{Name: "AUDITTRAIL_RETENTION_INTERVAL", Readers: "writer",
		Doc: "how often the writer drops expired day partitions"},
		Default: time.Hour, Min: time.Second, NoMax: true})
	// The writer's id registry keeps ids for the retention window and a
	// day (migrations.IDsRetentionDays, which this package cannot import:
	// the migrations' tests import internal/chdbtest, which imports it);
	// the idempotency window defaults to that span. The deploy tests check
	// that the writer's default is this one.
	registrySpan = time.Duration(RetentionDays.Default+1) * 24 * time.Hour
)

// Network trust.
var (
	TrustedProxies = declare(List{Var: Var{Name: "AUDITTRAIL_TRUSTED_PROXIES", Readers: "api, ingest",
		Doc:     "reverse proxies whose X-Forwarded-For / X-Real-IP the API and the gateway believe; empty: the socket's peer address is the client",
		Accepts: "CIDRs such as 10.0.0.0/8 or IP addresses, comma-separated"}})
	ForwardAllowedTargets = declare(List{Var: Var{Name: "AUDITTRAIL_FORWARD_ALLOWED_TARGETS", Readers: "api, forwarder, dlq",
		Doc:     "non-public addresses forwarding targets, alert webhooks and test calls may reach; loopback, private, link-local and other non-public addresses are refused otherwise",
		Accepts: "exact ip:port entries such as 127.0.0.1:18555 or [fd00::1]:443, and CIDRs such as 10.1.2.0/24, comma-separated"}})
)
