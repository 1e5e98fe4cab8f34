package main

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/kafkaconn"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/topics"
	"golang.org/x/mod/sumdb/note"
)

// apiConfig is the read API's configuration, read from the variables
// internal/config declares for it and the connections.
type apiConfig struct {
	Addr          string
	ClickHouse    chconn.Config
	Kafka         kafkaconn.Config
	RetentionDays int
	SettingsTopic string
	Events        event.Policy
	Egress        egress.Config
	Proxies       []netip.Prefix
	// Keys verify read-API tokens: the HS256 secret and the JWKS file's
	// keys.
	Keys *auth.Keys
	// LogKeys are the integrity log's verifier keys, LogOrigin its origin
	// prefix; Signer signs export manifests (nil without a signing key).
	LogKeys   []string
	LogOrigin string
	Signer    note.Signer
}

// configFromEnv reads the configuration and reports every value that fails
// to parse or cannot work, and every unknown AUDITTRAIL_* variable.
func configFromEnv(env *config.Env) (apiConfig, error) {
	c := apiConfig{
		Addr:          config.APIAddr.Get(env),
		ClickHouse:    chconn.FromEnv(env),
		Kafka:         kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions),
		RetentionDays: config.RetentionDays.Get(env),
		SettingsTopic: config.SettingsTopic.Get(env),
		Events:        config.EventPolicy(env),
		Egress:        egress.FromEnv(env),
	}
	c.Kafka.ClientID = "audittrail-api"
	proxies, perr := httpserver.TrustedProxiesFromEnv(env)
	c.Proxies = proxies
	secret, jwksFile := config.JWTSecret.Get(env), config.JWKSFile.Get(env)
	errs := []error{perr, config.APIAddr.Check(c.Addr), config.RetentionDays.Check(c.RetentionDays)}
	if secret != "" && len(secret) < 32 {
		errs = append(errs, config.JWTSecret.Refused())
	}
	if secret == "" && jwksFile == "" {
		errs = append(errs, fmt.Errorf("set %s (HS256 secret, %s) or %s (RS256/EdDSA public keys) to verify read-API tokens",
			config.JWTSecret.Name, config.JWTSecret.Accepts, config.JWKSFile.Name))
	}
	c.Keys = auth.NewKeys([]byte(secret))
	if jwksFile != "" {
		if err := c.Keys.AddJWKSFile(jwksFile); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", config.JWKSFile.Name, err))
		}
	}
	c.LogKeys, c.LogOrigin = config.VerifierKeys.Get(env), config.LogOrigin.Get(env)
	errs = append(errs, logKeys(&c, config.SigningKey.Get(env)))
	errs = append(errs, env.Err(), config.CheckUnknown(), c.ClickHouse.Validate(), c.Kafka.Validate(), c.Egress.Validate())
	return c, errors.Join(errs...)
}

// logKeys checks the verifier keys and makes the manifest signer of the
// signing key, when one is set.
func logKeys(c *apiConfig, signingKey string) error {
	for _, k := range c.LogKeys {
		if _, err := note.NewVerifier(k); err != nil {
			return fmt.Errorf("%s: %q is not a note verifier key (%v)", config.VerifierKeys.Name, k, err)
		}
	}
	if signingKey == "" {
		return nil
	}
	s, err := note.NewSigner(signingKey)
	if err != nil {
		return config.SigningKey.Refused()
	}
	c.Signer = s
	return nil
}
