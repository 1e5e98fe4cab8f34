package config

// The sealer's variables (consumers/sealer, consumers/cmd/sealer) and the
// integrity log's keys.

import (
	"time"

	"github.com/audittrail/audittrail/schemas/topics"
)

const sealerReaders = "sealer"

var (
	SealerAddr = declare(String{Var: Var{Name: "AUDITTRAIL_SEALER_ADDR", Readers: sealerReaders,
		Doc: "sealer health and metrics listen address", Accepts: "host:port to listen on"},
		Default: "127.0.0.1:8084", Required: true})
	SealerGroup = declare(String{Var: Var{Name: "AUDITTRAIL_SEALER_GROUP", Readers: sealerReaders,
		Doc: "sealer consumer group id (distinct from the writer's and the forwarder's)", Accepts: "a consumer group id"},
		Default: "audittrail-sealer", Required: true})
	SealerBatchSize = declare(Int{Var: Var{Name: "AUDITTRAIL_SEALER_BATCH_SIZE", Readers: sealerReaders,
		Doc: "records sealed at most per round (one lookup of what the writer stored, one insert of hashes, one of leaves)"},
		Default: 20_000, Min: 1, Max: 1_000_000})
	SealerBatchBytes = declare(Int{Var: Var{Name: "AUDITTRAIL_SEALER_BATCH_BYTES", Readers: sealerReaders,
		Doc: "record bytes sealed at most per round (a round holds its records and their stored rows in memory; at least one record)"},
		Default: 64 << 20, Min: 1 << 20, Max: 1 << 30})
	SealerPendingBytes = declare(Int{Var: Var{Name: "AUDITTRAIL_SEALER_PENDING_BYTES", Readers: sealerReaders,
		Doc: "record bytes read and waiting for the writer's commits, over all partitions, before fetching pauses (records are up to 1 MiB each)"},
		Default: 256 << 20, Min: 1 << 20, Max: 8 << 30})
	SealerYieldLag = declare(Int{Var: Var{Name: "AUDITTRAIL_SEALER_YIELD_LAG", Readers: sealerReaders,
		Doc: "records the writer group may lag behind the end of the sealer's partitions before the sealer yields to it, sealing one round every 5 s until the writer catches up (0: never yield)"},
		Default: 100_000, Min: 0, Max: 100_000_000})
	SealerSample = declare(Int{Var: Var{Name: "AUDITTRAIL_SEALER_SAMPLE", Readers: sealerReaders,
		Doc: "stored rows of each round's new leaves read back at random (crypto/rand) and compared with the leaf computed from their Kafka record (at most one read a second, of at most this many rows: the rounds' picks between two reads thinned to a uniform choice): a live signal of rows changed in ClickHouse (audittrail_sealer_rows_sampled_total{result=\"altered\"}, alert AuditTrailStoredRowMismatch); 0: off"},
		Default: 16, Min: 0, Max: 1000})
	SealerAudit = declare(Int{Var: Var{Name: "AUDITTRAIL_SEALER_AUDIT", Readers: sealerReaders,
		Doc: "sealed leaves of the logs the sealer holds read back every 10 s, chosen at random (crypto/rand) among all their leaves, with their stored hashes and events' rows, and checked to agree: a background signal of rows changed after they were sealed (audittrail_sealer_leaves_audited_total{result=\"altered\"}, alert AuditTrailStoredRowMismatch); 0: off"},
		Default: 16, Min: 0, Max: 1000})
	SigningKey = declare(String{Var: Var{Name: "AUDITTRAIL_SIGNING_KEY", Readers: sealerReaders,
		Doc:     "Ed25519 note signer key the sealer signs checkpoints with (scripts/up generates one into .local/secrets.env; sealer -generate-key prints a pair)",
		Accepts: "a note signer key, PRIVATE+KEY+<name>+<hash>+<key> (golang.org/x/mod/sumdb/note)"}})
	VerifierKeys = declare(List{Var: Var{Name: "AUDITTRAIL_VERIFIER_KEYS", Readers: "sealer, api, verify",
		Doc:     "note verifier keys checkpoints are checked with, comma-separated: the signing key's (the sealer requires it), and after a rotation the old ones too",
		Accepts: "note verifier keys, <name>+<hash>+<key>"}})
	LogOrigin = declare(String{Var: Var{Name: "AUDITTRAIL_LOG_ORIGIN", Readers: "sealer, api, verify",
		Doc:     "the deployment's name in checkpoints' origin lines, <origin>/<workspace_id>",
		Accepts: "a host-like name without spaces or slashes"},
		Default: "audittrail.local", Required: true})
	CheckpointInterval = declare(Duration{Var: Var{Name: "AUDITTRAIL_CHECKPOINT_INTERVAL", Readers: sealerReaders,
		Doc: "least time between two signed checkpoints of a workspace (one is signed only when its log grew)"},
		Default: time.Minute, Min: 100 * time.Millisecond, Max: 24 * time.Hour})
	CheckpointsTopic = declare(String{Var: Var{Name: "AUDITTRAIL_CHECKPOINTS_TOPIC", Readers: "sealer, api, verify",
		Doc: "compacted topic the signed checkpoints are published on (key: workspace id)", Accepts: "a topic name"},
		Default: topics.Checkpoints})
)
