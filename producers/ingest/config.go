package ingest

import (
	"errors"
	"fmt"
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

// FromEnv reads config.IngestAddr, config.IngestTokens,
// config.CredentialsTopic, the event policy (config.EventPolicy) and the
// rate limits (config.IngestWorkspaceRate, ...Burst, config.IngestCredentialRate,
// ...Burst, config.IngestRateMaxKeys).
func FromEnv(e *config.Env, topic string) Config {
	return Config{
		Addr:             config.IngestAddr.Get(e),
		Tokens:           config.IngestTokens.Get(e),
		CredentialsTopic: config.CredentialsTopic.Get(e),
		Topic:            topic,
		Policy:           config.EventPolicy(e),
		Limits: RateLimits{
			WorkspaceRate:   config.IngestWorkspaceRate.Get(e),
			WorkspaceBurst:  config.IngestWorkspaceBurst.Get(e),
			CredentialRate:  config.IngestCredentialRate.Get(e),
			CredentialBurst: config.IngestCredentialBurst.Get(e),
			MaxKeys:         config.IngestRateMaxKeys.Get(e),
		},
	}
}

// Validate reports configuration that cannot work; each message about a
// variable names it and what it accepts.
func (c Config) Validate() error {
	errs := []error{config.IngestAddr.Check(c.Addr)}
	if len(c.Tokens) == 0 && c.CredentialsTopic == "" {
		errs = append(errs, fmt.Errorf("%s and %s are both empty: set the credentials topic (producer credentials) or legacy ingest tokens",
			config.CredentialsTopic.Name, config.IngestTokens.Name))
	}
	for _, t := range c.Tokens {
		if len(t) < 16 {
			// The value is a secret: the message does not repeat it.
			errs = append(errs, config.IngestTokens.Refused())
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
