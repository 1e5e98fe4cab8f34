package config

// The forwarder's variables (consumers/forward, consumers/cmd/forwarder).

import (
	"time"

	"github.com/audittrail/audittrail/schemas/topics"
)

const forwarderReaders = "forwarder, forwarder-dlq"

var (
	ForwarderAddr = declare(String{Var: Var{Name: "AUDITTRAIL_FORWARDER_ADDR", Readers: "forwarder",
		Doc: "forwarder health and metrics listen address", Accepts: "host:port to listen on"},
		Default: "127.0.0.1:8083", Required: true})
	ForwarderGroup = declare(String{Var: Var{Name: "AUDITTRAIL_FORWARDER_GROUP", Readers: forwarderReaders,
		Doc: "forwarder consumer group id (distinct from the writer's)", Accepts: "a consumer group id"},
		Default: "audittrail-forwarder", Required: true})
	ForwarderDLQTopic = declare(String{Var: Var{Name: "AUDITTRAIL_FORWARDER_DLQ_TOPIC", Readers: forwarderReaders,
		Doc: "dead-letter topic for events the forwarder could not deliver", Accepts: "a topic name"},
		Default: topics.ForwardDeadLetters})
	ForwarderWorkers = declare(Int{Var: Var{Name: "AUDITTRAIL_FORWARDER_WORKERS", Readers: forwarderReaders,
		Doc: "concurrent deliveries (each to one workspace target at a time)"},
		Default: 64, Min: 1, Max: 10_000})
	ForwarderMaxInFlight = declare(Int{Var: Var{Name: "AUDITTRAIL_FORWARDER_MAX_IN_FLIGHT", Readers: forwarderReaders,
		Doc: "records read but not yet delivered before reading pauses"},
		Default: 100_000, Min: 1, Max: 10_000_000})
	ForwarderRequestTimeout = declare(Duration{Var: Var{Name: "AUDITTRAIL_FORWARDER_REQUEST_TIMEOUT", Readers: forwarderReaders,
		Doc: "timeout of one delivery request"},
		Default: 10 * time.Second, Min: 10 * time.Millisecond, Max: 10 * time.Minute})
	ForwarderMaxAttempts = declare(Int{Var: Var{Name: "AUDITTRAIL_FORWARDER_MAX_ATTEMPTS", Readers: forwarderReaders,
		Doc: "delivery attempts before an event is dead-lettered"},
		Default: 10, Min: 1, Max: 100})
	// Min is the first backoff (forward.Config.RetryMin by default).
	ForwarderRetryMax = declare(Duration{Var: Var{Name: "AUDITTRAIL_FORWARDER_RETRY_MAX", Readers: forwarderReaders,
		Doc: "longest backoff between delivery attempts"},
		Default: 30 * time.Second, Min: 200 * time.Millisecond, NoMax: true, Note: "the first backoff"})
	ForwarderViolationInterval = declare(Duration{Var: Var{Name: "AUDITTRAIL_FORWARDER_VIOLATION_INTERVAL", Readers: forwarderReaders,
		Doc: "how often tracking-plan violations are recorded per workspace"},
		Default: time.Minute, Min: 10 * time.Millisecond, NoMax: true})
	ForwarderDedupeMaxIDs = declare(Int{Var: Var{Name: "AUDITTRAIL_FORWARDER_DEDUPE_MAX_IDS", Readers: forwarderReaders,
		Doc: "most event ids whose first version a forwarder instance remembers (loaded from the writer's id registry for the retention window and a day, plus those it finished since; oldest forgotten first; about 150 bytes each): another version of a remembered id is not forwarded"},
		Default: 1_000_000, Min: 1, Max: 100_000_000})
)
