package config

// The writer's variables (consumers/writer, consumers/cmd/writer).

import (
	"time"

	"github.com/audittrail/audittrail/schemas/topics"
)

const writerReaders = "writer"

var (
	WriterAddr = declare(String{Var: Var{Name: "AUDITTRAIL_WRITER_ADDR", Readers: writerReaders,
		Doc: "writer health and metrics listen address", Accepts: "host:port to listen on"},
		Default: "127.0.0.1:8082", Required: true})
	WriterGroup = declare(String{Var: Var{Name: "AUDITTRAIL_WRITER_GROUP", Readers: "writer, forwarder",
		Doc: "writer consumer group id (the forwarder waits for its commits when handing over a workspace moved by a partition-count increase)", Accepts: "a consumer group id"},
		Default: "audittrail-writer", Required: true})
	WriterDLQTopic = declare(String{Var: Var{Name: "AUDITTRAIL_WRITER_DLQ_TOPIC", Readers: "writer, dlq",
		Doc: "dead-letter topic for records the writer cannot store", Accepts: "a topic name"},
		Default: topics.DeadLetters})
	WriterBatchSize = declare(Int{Var: Var{Name: "AUDITTRAIL_WRITER_BATCH_SIZE", Readers: writerReaders,
		Doc: "rows per ClickHouse insert at most (fewer, larger inserts leave ClickHouse fewer parts to merge)"},
		Default: 100_000, Min: 1, Max: 1_000_000})
	WriterBatchBytes = declare(Int{Var: Var{Name: "AUDITTRAIL_WRITER_BATCH_BYTES", Readers: writerReaders,
		Doc: "record bytes per ClickHouse insert at most (a batch holds its records and rows in memory until stored; records are up to 1 MiB each; at least one record)"},
		Default: 64 << 20, Min: 1 << 20, Max: 1 << 30})
	WriterBatchAge = declare(Duration{Var: Var{Name: "AUDITTRAIL_WRITER_BATCH_AGE", Readers: writerReaders,
		Doc: "longest a row waits before its batch is inserted"},
		Default: 250 * time.Millisecond, Min: time.Millisecond, Max: time.Minute})
	WriterSessionTimeout = declare(Duration{Var: Var{Name: "AUDITTRAIL_WRITER_SESSION_TIMEOUT", Readers: writerReaders,
		Doc: "how long before a crashed writer's partitions move to another instance"},
		Default: 10 * time.Second, Min: 6 * time.Second, Max: 5 * time.Minute, Note: "the broker's group session bounds"})
	WriterInstanceID = declare(String{Var: Var{Name: "AUDITTRAIL_WRITER_INSTANCE_ID", Readers: writerReaders,
		Doc: "static group membership id of this writer instance (unique per instance): a restarted instance gets its partitions back at once", Accepts: "any text; empty: dynamic membership"}})
	WriterDedupeWindow = declare(Duration{Var: Var{Name: "AUDITTRAIL_WRITER_DEDUPE_WINDOW", Readers: writerReaders,
		Doc:     "idempotency window, by default the retention window and a day: an event id stored within it is not stored again, whatever its timestamp",
		Accepts: "0 up to the retention window and a day (0 turns it off)"},
		Default: registrySpan})
	WriterInsertStreams = declare(Int{Var: Var{Name: "AUDITTRAIL_WRITER_INSERT_STREAMS", Readers: writerReaders,
		Doc: "batches inserted at once, each on its own connection: ClickHouse writes one batch while the next streams in; offsets are still committed in batch order"},
		Default: 2, Min: 1, Max: 16})
	WriterDedupeMaxIDs = declare(Int{Var: Var{Name: "AUDITTRAIL_WRITER_DEDUPE_MAX_IDS", Readers: writerReaders,
		Doc: "most ids the idempotency window holds per writer instance (oldest forgotten first; about 150 bytes each)"},
		Default: 1_000_000, Min: 1, Max: 100_000_000})
	WriterRecordOffsets = declare(Bool{Var: Var{Name: "AUDITTRAIL_WRITER_RECORD_OFFSETS", Readers: writerReaders,
		Doc: "record, per Kafka offset, what the writer did with the record (audit_event_offsets), which the sealer reads instead of reading the stored rows back; false only in deployments without the integrity log's sealer"},
		Default: true})
)
