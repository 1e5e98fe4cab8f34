// Package config binds AUDITTRAIL_* environment variables to component
// configuration. Each component owns a Config struct with defaults and a
// Validate method; this package only reads and parses values, collecting
// every error so that a misconfigured service says everything at once.
package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Prefix is the prefix of every environment variable the product reads.
const Prefix = "AUDITTRAIL_"

// Env reads typed values from environment variables. Values that fail to
// parse are recorded and reported by Err; the default is returned for them.
type Env struct {
	lookup func(string) (string, bool)
	seen   map[string]bool
	errs   []error
}

// FromOS returns an Env reading the process environment.
func FromOS() *Env { return FromMap(nil) }

// FromMap returns an Env reading m, or the process environment when m is nil.
func FromMap(m map[string]string) *Env {
	lookup := os.LookupEnv
	if m != nil {
		lookup = func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	return &Env{lookup: lookup, seen: map[string]bool{}}
}

func (e *Env) get(name string) (string, bool) {
	e.seen[name] = true
	v, ok := e.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

func (e *Env) fail(name, v, want string) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: want %s", name, v, want))
}

// String returns the variable's value, or def when unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// List returns the comma-separated values of the variable, trimmed, empty
// items dropped; def (comma-separated) when unset.
func (e *Env) List(name, def string) []string {
	v := e.String(name, def)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Int returns the variable as an integer.
func (e *Env) Int(name string, def int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(name, v, "an integer")
		return def
	}
	return n
}

// Bool returns the variable as a boolean (true/false/1/0).
func (e *Env) Bool(name string, def bool) bool {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, v, "true or false")
		return def
	}
	return b
}

// Duration returns the variable as a Go duration such as "500ms" or "5s".
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.fail(name, v, `a duration such as "500ms" or "5s"`)
		return def
	}
	return d
}

// Err reports every value that failed to parse.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Unknown returns the AUDITTRAIL_* variables present in environ that no
// component reads (see Known), sorted: most likely typos.
func Unknown(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, Prefix) && !known[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// CheckUnknown returns an error naming every AUDITTRAIL_* variable in the
// process environment that the product does not read.
func CheckUnknown() error {
	if u := Unknown(os.Environ()); len(u) > 0 {
		return fmt.Errorf("unknown configuration variables %s: check the spelling against the README's configuration table", strings.Join(u, ", "))
	}
	return nil
}

// Variable documents one configuration variable.
type Variable struct {
	Name, Default, Description string
}

// Variables lists every variable any component reads, with its default;
// the README's configuration table follows it. A variable set in the
// environment but missing here is reported by CheckUnknown as a likely typo.
var Variables = []Variable{
	{"AUDITTRAIL_KAFKA_BROKERS", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated"},
	{"AUDITTRAIL_KAFKA_TOPIC", "audit-events", "topic the events are published to and consumed from"},
	{"AUDITTRAIL_KAFKA_PARTITIONS", "6", "partition count used when a topic is created"},
	{"AUDITTRAIL_CLICKHOUSE_ADDR", "127.0.0.1:9000", "ClickHouse native protocol host:port"},
	{"AUDITTRAIL_CLICKHOUSE_DATABASE", "audittrail", "ClickHouse database (created when missing)"},
	{"AUDITTRAIL_CLICKHOUSE_USER", "default", "ClickHouse user"},
	{"AUDITTRAIL_CLICKHOUSE_PASSWORD", "", "ClickHouse password"},
	{"AUDITTRAIL_CLICKHOUSE_COMPRESSION", "auto", "native protocol block compression: auto (none for a loopback address, lz4 otherwise), lz4, zstd or none"},
	{"AUDITTRAIL_CLICKHOUSE_CLUSTER", "", "ClickHouse cluster (remote_servers name) the schema is created on: replicated tables behind Distributed ones; empty for a single server"},
	{"AUDITTRAIL_INGEST_ADDR", "127.0.0.1:8081", "ingest gateway listen address"},
	{"AUDITTRAIL_INGEST_TOKENS", "", "legacy ingest tokens, comma-separated, each at least 16 characters: each may write every event into every workspace (deprecated: use producer credentials; the gateway logs a warning)"},
	{"AUDITTRAIL_CREDENTIALS_TOPIC", "audit-credentials", "compacted topic holding the producer credentials (ingest gateway, credentials command); the gateway is ready once it has read it"},
	{"AUDITTRAIL_INGEST_WORKSPACE_RATE", "1000", "events per second one workspace may send through a gateway instance once its burst is spent (0: no limit); over it the answer is 429 with Retry-After"},
	{"AUDITTRAIL_INGEST_WORKSPACE_BURST", "5000", "events one workspace may send at once (its token bucket's size; at least 1000, a full batch)"},
	{"AUDITTRAIL_INGEST_CREDENTIAL_RATE", "10000", "events per second one producer credential may send through a gateway instance, across workspaces (0: no limit)"},
	{"AUDITTRAIL_INGEST_CREDENTIAL_BURST", "20000", "events one credential may send at once (at least 1000)"},
	{"AUDITTRAIL_INGEST_RATE_MAX_KEYS", "100000", "most workspace (and credential) buckets a gateway keeps; refilled buckets are dropped, and past this the least recently used"},
	{"AUDITTRAIL_ALLOW_CUSTOM_EVENTS", "false", "accept event names outside the catalogue from every workspace (at ingest, and in tracking plans, filters and alerts)"},
	{"AUDITTRAIL_CUSTOM_EVENT_WORKSPACES", "", "workspaces allowed to send (and name in their settings) event names outside the catalogue, comma-separated"},
	{"AUDITTRAIL_API_ADDR", "127.0.0.1:8080", "read API (and page) listen address"},
	{"AUDITTRAIL_TRUSTED_PROXIES", "", "CIDRs or addresses of reverse proxies, comma-separated, whose X-Forwarded-For / X-Real-IP the API and the gateway believe; empty: the socket's peer address is the client"},
	{"AUDITTRAIL_JWT_SECRET", "", "HS256 secret for read-API tokens, at least 32 characters (the API needs it or AUDITTRAIL_JWKS_FILE)"},
	{"AUDITTRAIL_JWKS_FILE", "", "JWKS file (RFC 7517) of RS256/EdDSA public keys for read-API tokens, looked up by kid; read at start"},
	{"AUDITTRAIL_RETENTION_DAYS", "90", "retention window in days"},
	{"AUDITTRAIL_RETENTION_INTERVAL", "1h", "how often the writer drops expired day partitions"},
	{"AUDITTRAIL_WRITER_ADDR", "127.0.0.1:8082", "writer health and metrics listen address"},
	{"AUDITTRAIL_WRITER_GROUP", "audittrail-writer", "writer consumer group id"},
	{"AUDITTRAIL_WRITER_DLQ_TOPIC", "audit-events-dlq", "dead-letter topic for records the writer cannot store"},
	{"AUDITTRAIL_WRITER_BATCH_SIZE", "100000", "rows per ClickHouse insert at most (fewer, larger inserts leave ClickHouse fewer parts to merge)"},
	{"AUDITTRAIL_WRITER_BATCH_AGE", "250ms", "longest a row waits before its batch is inserted"},
	{"AUDITTRAIL_WRITER_SESSION_TIMEOUT", "10s", "how long before a crashed writer's partitions move to another instance"},
	{"AUDITTRAIL_WRITER_INSTANCE_ID", "", "static group membership id of this writer instance (unique per instance): a restarted instance gets its partitions back at once"},
	{"AUDITTRAIL_WRITER_DEDUPE_WINDOW", "2184h", "idempotency window (0 up to the retention window and a day, the default; 0 turns it off): an event id stored within it is not stored again, whatever its timestamp"},
	{"AUDITTRAIL_WRITER_INSERT_STREAMS", "2", "batches inserted at once (1-16), each on its own connection: ClickHouse writes one batch while the next streams in; offsets are still committed in batch order"},
	{"AUDITTRAIL_WRITER_DEDUPE_MAX_IDS", "1000000", "most ids the idempotency window holds per writer instance (oldest forgotten first; about 150 bytes each)"},
	{"AUDITTRAIL_SETTINGS_TOPIC", "audit-settings", "compacted topic holding workspaces' forwarding settings (API and forwarder)"},
	{"AUDITTRAIL_FORWARDER_ADDR", "127.0.0.1:8083", "forwarder health and metrics listen address"},
	{"AUDITTRAIL_FORWARDER_GROUP", "audittrail-forwarder", "forwarder consumer group id"},
	{"AUDITTRAIL_FORWARDER_DLQ_TOPIC", "audit-forward-dlq", "dead-letter topic for events the forwarder could not deliver"},
	{"AUDITTRAIL_FORWARDER_WORKERS", "64", "concurrent deliveries (each to one workspace target at a time)"},
	{"AUDITTRAIL_FORWARDER_MAX_IN_FLIGHT", "100000", "records read but not yet delivered before reading pauses"},
	{"AUDITTRAIL_FORWARDER_REQUEST_TIMEOUT", "10s", "timeout of one delivery request"},
	{"AUDITTRAIL_FORWARDER_MAX_ATTEMPTS", "10", "delivery attempts before an event is dead-lettered"},
	{"AUDITTRAIL_FORWARDER_RETRY_MAX", "30s", "longest backoff between delivery attempts"},
	{"AUDITTRAIL_FORWARDER_VIOLATION_INTERVAL", "1m", "how often tracking-plan violations are recorded per workspace"},
	{"AUDITTRAIL_FORWARD_ALLOWED_TARGETS", "", "non-public addresses forwarding targets, alert webhooks and test calls may reach (API and forwarder), comma-separated: exact ip:port entries (127.0.0.1:18555) and CIDRs; loopback, private, link-local and other non-public addresses are refused otherwise"},
	{"AUDITTRAIL_FORWARDER_DEDUPE_MAX_IDS", "1000000", "most event ids whose first version a forwarder instance remembers (loaded from the writer's id registry in ClickHouse for the retention window and a day, plus those it finished since; oldest forgotten first; about 150 bytes each): another version of a remembered id is not forwarded"},
	{"AUDITTRAIL_INTEGRATION", "", "set to 1 by scripts/test to run the integration tests against real servers"},
	{"AUDITTRAIL_HOME", ".local", "where scripts keep server binaries, data, logs and pid files"},
	{"AUDITTRAIL_KAFKA_HEAP", "-Xms256m -Xmx1g", "JVM heap flags of the local Kafka broker (scripts)"},
	{"AUDITTRAIL_KAFKA_TIMEOUT", "90", "seconds scripts wait for the local broker"},
	{"AUDITTRAIL_CH_TIMEOUT", "60", "seconds scripts wait for the local ClickHouse"},
	{"AUDITTRAIL_LOADGEN_TOKEN", "", "ingest token the load generator sends (default of its -token flag)"},
	{"AUDITTRAIL_TEST_LOG", "", "set to 1 to print component logs from integration tests"},
	{"AUDITTRAIL_CHDB_PYTHON", "", "the Python with chdb-core that the current-ClickHouse tests run (scripts/test sets it)"},
}

var known = func() map[string]bool {
	m := make(map[string]bool, len(Variables))
	for _, v := range Variables {
		m[v.Name] = true
	}
	return m
}()
