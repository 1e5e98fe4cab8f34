package config

// The ingest gateway's variables (producers/ingest).

const ingestReaders = "ingest"

var (
	IngestAddr = declare(String{Var: Var{Name: "AUDITTRAIL_INGEST_ADDR", Readers: ingestReaders,
		Doc: "ingest gateway listen address", Accepts: "host:port to listen on"},
		Default: "127.0.0.1:8081", Required: true})
	IngestTokens = declare(List{Var: Var{Name: "AUDITTRAIL_INGEST_TOKENS", Readers: ingestReaders,
		Doc:     "legacy ingest tokens: each may write every event into every workspace (deprecated: use producer credentials; the gateway logs a warning)",
		Accepts: "tokens of at least 16 characters, comma-separated"}})
	// The bursts' minimum is a full batch (ingest.MaxBatch events), or no
	// batch of that size could ever pass.
	IngestWorkspaceRate = declare(Int{Var: Var{Name: "AUDITTRAIL_INGEST_WORKSPACE_RATE", Readers: ingestReaders,
		Doc: "events per second one workspace may send through a gateway instance once its burst is spent; over it the answer is 429 with Retry-After"},
		Default: 1000, NoMax: true, Note: "0 turns the limit off"})
	IngestWorkspaceBurst = declare(Int{Var: Var{Name: "AUDITTRAIL_INGEST_WORKSPACE_BURST", Readers: ingestReaders,
		Doc: "events one workspace may send at once (its token bucket's size)"},
		Default: 5000, Min: 1000, NoMax: true, Note: "a full batch"})
	IngestCredentialRate = declare(Int{Var: Var{Name: "AUDITTRAIL_INGEST_CREDENTIAL_RATE", Readers: ingestReaders,
		Doc: "events per second one producer credential may send through a gateway instance, across workspaces"},
		Default: 10_000, NoMax: true, Note: "0 turns the limit off"})
	IngestCredentialBurst = declare(Int{Var: Var{Name: "AUDITTRAIL_INGEST_CREDENTIAL_BURST", Readers: ingestReaders,
		Doc: "events one credential may send at once"},
		Default: 20_000, Min: 1000, NoMax: true, Note: "a full batch"})
	IngestRateMaxKeys = declare(Int{Var: Var{Name: "AUDITTRAIL_INGEST_RATE_MAX_KEYS", Readers: ingestReaders,
		Doc: "most workspace (and credential) buckets a gateway keeps; refilled buckets are dropped, and past this the least recently used"},
		Default: 100_000, NoMax: true, Note: "0: the default"})
)
