// Package topics names the Kafka topics and record headers that producers and
// consumers agree on. Records on the events topic are keyed by workspace id
// and carry one JSON-encoded audit event (see package event) as their value.
package topics

const (
	// Events is the topic every accepted audit event is published to.
	Events = "audit-events"
	// DeadLetters receives records the writer cannot store (undecodable or
	// failing validation), with the Header* reason headers below.
	DeadLetters = "audit-events-dlq"

	// DefaultPartitions is the partition count scripts create Events with.
	DefaultPartitions = 6
)

// Record headers.
const (
	// HeaderEvent carries the event name, so consumers can route without
	// decoding the value.
	HeaderEvent = "event"
	// HeaderSchemaVersion carries the contract version of the value.
	HeaderSchemaVersion = "schema_version"

	// HeaderDLQReason says why a record was dead-lettered.
	HeaderDLQReason = "dlq_reason"
	// HeaderDLQTopic, HeaderDLQPartition and HeaderDLQOffset locate the
	// original record.
	HeaderDLQTopic     = "dlq_source_topic"
	HeaderDLQPartition = "dlq_source_partition"
	HeaderDLQOffset    = "dlq_source_offset"
)

// Forwarding topics.
const (
	// Settings is the compacted topic holding each workspace's forwarding
	// settings, one record per workspace and kind (see package trackingplan
	// for the key and value format). The latest record of a key wins.
	Settings = "audit-settings"
	// ForwardDeadLetters receives audit events the forwarder could not
	// deliver (target rejected them, retries exhausted, too large), with the
	// Header* reason headers and HeaderForwardTarget.
	ForwardDeadLetters = "audit-forward-dlq"

	// HeaderForwardTarget names the target kind a forwarding dead letter was
	// meant for: "source" (the event-streams source) or "alert" (the chat
	// webhook).
	HeaderForwardTarget = "forward_target"
	// HeaderDLQAttempts carries how many delivery attempts were made.
	HeaderDLQAttempts = "dlq_attempts"
)

// Credentials is the compacted topic holding producer credentials, one
// record per credential id (see package credential for the value format).
// The ingest gateway reads it; the credentials admin command writes it.
const Credentials = "audit-credentials"

// Checkpoints is the compacted topic the sealer publishes each workspace's
// latest signed checkpoint on (key: the workspace id; value: the signed
// note text, see docs/integrity.md), so that witnesses outside ClickHouse
// can follow every workspace's log.
const Checkpoints = "audit-checkpoints"
