package ingest

import (
	"errors"
	"time"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/schemas/event"
)

// Config configures the gateway.
type Config struct {
	Addr string
	// Tokens are the legacy ingest tokens (Authorization: Bearer <token>):
	// each is a credential with all scopes, its id derived from the token
	// (credential.LegacyID).
	Tokens []string
	// CredentialsTopic is the compacted topic of producer credentials
	// (AUDITTRAIL_CREDENTIALS_TOPIC); Credentials is the copy of it the
	// gateway looks credentials up in (nil: legacy tokens only).
	CredentialsTopic string
	Credentials      Credentials
	Topic            string
	// Policy decides which event names are accepted.
	Policy event.Policy
	// MaxConcurrent bounds the requests being read, validated and published
	// at once (default 64), and so the gateway's memory: at most
	// MaxConcurrent x 4 MiB of bodies. A request that finds no slot within
	// AdmitWait (default 5 s) is answered 503 "busy" with Retry-After.
	MaxConcurrent int
	AdmitWait     time.Duration
	// BodyTimeout bounds reading the body once a slot is taken (default
	// 10 s): a client that stalls its body loses the slot after it, with
	// 408. The server's read timeout bounds the whole request as well.
	BodyTimeout time.Duration
	// Limits are the per-workspace and per-credential rate limits (zero:
	// none); a request over one is answered 429 and publishes nothing.
	Limits RateLimits
}

// Defaults of Config's limits.
const (
	DefaultMaxConcurrent = 64
	DefaultAdmitWait     = 5 * time.Second
	DefaultBodyTimeout   = 10 * time.Second
)

// FromEnv reads AUDITTRAIL_INGEST_ADDR, AUDITTRAIL_INGEST_TOKENS,
// AUDITTRAIL_CREDENTIALS_TOPIC, AUDITTRAIL_ALLOW_CUSTOM_EVENTS,
// AUDITTRAIL_CUSTOM_EVENT_WORKSPACES and the rate limits
// (AUDITTRAIL_INGEST_WORKSPACE_RATE, _WORKSPACE_BURST, _CREDENTIAL_RATE,
// _CREDENTIAL_BURST, _RATE_MAX_KEYS).
func FromEnv(e *config.Env, topic string) Config {
	c := Config{
		Addr:             e.String("AUDITTRAIL_INGEST_ADDR", "127.0.0.1:8081"),
		Tokens:           e.List("AUDITTRAIL_INGEST_TOKENS", ""),
		CredentialsTopic: config.CredentialsTopic(e),
		Topic:            topic,
		Policy:           config.EventPolicy(e),
		Limits: RateLimits{
			WorkspaceRate:   e.Int("AUDITTRAIL_INGEST_WORKSPACE_RATE", DefaultWorkspaceRate),
			WorkspaceBurst:  e.Int("AUDITTRAIL_INGEST_WORKSPACE_BURST", DefaultWorkspaceBurst),
			CredentialRate:  e.Int("AUDITTRAIL_INGEST_CREDENTIAL_RATE", DefaultCredentialRate),
			CredentialBurst: e.Int("AUDITTRAIL_INGEST_CREDENTIAL_BURST", DefaultCredentialBurst),
			MaxKeys:         e.Int("AUDITTRAIL_INGEST_RATE_MAX_KEYS", DefaultRateMaxKeys),
		},
	}
	return c
}

// Validate reports configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("AUDITTRAIL_INGEST_ADDR is empty: set host:port to listen on"))
	}
	if len(c.Tokens) == 0 && c.CredentialsTopic == "" {
		errs = append(errs, errors.New("AUDITTRAIL_CREDENTIALS_TOPIC and AUDITTRAIL_INGEST_TOKENS are both empty: set the credentials topic (producer credentials) or legacy ingest tokens"))
	}
	for _, t := range c.Tokens {
		if len(t) < 16 {
			errs = append(errs, errors.New("AUDITTRAIL_INGEST_TOKENS: every token must be at least 16 characters"))
			break
		}
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("topic is empty"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
