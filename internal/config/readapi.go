package config

// The read API's variables (query-api/cmd/api, query-api/cmd/token).

var (
	APIAddr = declare(String{Var: Var{Name: "AUDITTRAIL_API_ADDR", Readers: "api",
		Doc: "read API (and page) listen address", Accepts: "host:port to listen on"},
		Default: "127.0.0.1:8080", Required: true})
	JWTSecret = declare(String{Var: Var{Name: "AUDITTRAIL_JWT_SECRET", Readers: "api, token",
		Doc:     "HS256 secret for read-API tokens (the API needs it or AUDITTRAIL_JWKS_FILE)",
		Accepts: "at least 32 characters"}})
	JWKSFile = declare(String{Var: Var{Name: "AUDITTRAIL_JWKS_FILE", Readers: "api",
		Doc:     "JWKS file (RFC 7517) of RS256/EdDSA public keys for read-API tokens, looked up by kid; read at start",
		Accepts: "a readable JWKS file path"}})
	ManifestSigningKey = declare(String{Var: Var{Name: "AUDITTRAIL_MANIFEST_SIGNING_KEY", Readers: "api, writer",
		Doc:     "Ed25519 note signer key the API signs export manifests with, and the writer archive manifests; not the checkpoints' key (without it, self-proving exports answer 503)",
		Accepts: "a note signer key, PRIVATE+KEY+<name>+<hash>+<key> (golang.org/x/mod/sumdb/note), other than AUDITTRAIL_SIGNING_KEY"}})
	TimelineCacheEntries = declare(Int{Var: Var{Name: "AUDITTRAIL_TIMELINE_CACHE_ENTRIES", Readers: "api",
		Doc: "entries of the timeline's cache of parts' counts per 15-minute slot (one per part of 10,000 rows or more, workspace and filter; least recently used dropped first, a workspace's own first once it holds an eighth of the entries or bytes); 0 turns it off. Its memory is bounded by AUDITTRAIL_TIMELINE_CACHE_MB"},
		Default: 20_000, Min: 0, Max: 10_000_000})
	TimelineCacheMB = declare(Int{Var: Var{Name: "AUDITTRAIL_TIMELINE_CACHE_MB", Readers: "api",
		Doc: "memory (MiB, 2^20 bytes) the timeline's cache of parts' counts may hold, as the cache estimates it: an entry is about 0.4 KB plus 8 bytes per slot with events (at most 672 slots a part of a week: under 6 KB) plus its part's first and last seconds' keys (about 24 bytes and the id each, at most 64 a second: a part with more is not cached), ids of up to 128 bytes: at most about 26 KB; 0 turns the cache off"},
		Default: 64, Min: 0, Max: 65_536})
	ManifestVerifierKeys = declare(List{Var: Var{Name: "AUDITTRAIL_MANIFEST_VERIFIER_KEYS", Readers: "api, writer, verify",
		Doc:     "note verifier keys export manifests are checked with, comma-separated (the manifest key's, and old ones after a rotation); none may also be a checkpoint verifier key",
		Accepts: "note verifier keys, <name>+<hash>+<key>"}})
)
