package config

// The operators' variables: the admin API (query-api/admin, its listener in
// the api process, the admin command) and the archive of expiring events
// (consumers/archive, run by the writer; restored by the admin API).

var (
	AdminAddr = declare(String{Var: Var{Name: "AUDITTRAIL_ADMIN_ADDR", Readers: "api",
		Doc:     "admin API listen address (retention, legal holds, archive restore), separate from the owners' API; empty: the admin API is off. Keep it on a private network or loopback",
		Accepts: "host:port to listen on, or empty"}})
	AdminAllowRemote = declare(Bool{Var: Var{Name: "AUDITTRAIL_ADMIN_ALLOW_REMOTE", Readers: "api",
		Doc: "let the admin API listen on an address other than loopback; it speaks plain HTTP, so put TLS in front of it (a sidecar or a private network) before turning this on"}})
	AdminTokens = declare(List{Var: Var{Name: "AUDITTRAIL_ADMIN_TOKENS", Readers: "api, admin",
		Doc:     "operator credentials of the admin API, comma-separated name:token pairs; the name is recorded as who asked in the audit events (required with AUDITTRAIL_ADMIN_ADDR; the admin command sends the first)",
		Accepts: "name:token pairs, the name 1-64 letters, digits, '.', '_', '@' or '-', the token at least 32 characters without commas"}})
	AdminURL = declare(String{Var: Var{Name: "AUDITTRAIL_ADMIN_URL", Readers: "admin",
		Doc:     "base URL of the admin API the admin command calls",
		Accepts: "an http or https URL"},
		Default: "http://127.0.0.1:8085"})
	ArchiveDir = declare(String{Var: Var{Name: "AUDITTRAIL_ARCHIVE_DIR", Readers: "writer, api",
		Doc:     "directory the writer archives events into before they expire (one gzip NDJSON file with its signed manifest per workspace and day; needs AUDITTRAIL_MANIFEST_SIGNING_KEY) and the admin API restores from; empty: no archive",
		Accepts: "an absolute directory path, writable by the writer"}})
)
