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
	// CacheEntries bounds the timeline's slot cache (store.WithSlotCache).
	CacheEntries int
	// CacheMB bounds the slot cache's memory (MiB).
	CacheMB       int
	SettingsTopic string
	Events        event.Policy
	Egress        egress.Config
	Proxies       []netip.Prefix
	// Keys verify read-API tokens: the HS256 secret and the JWKS file's
	// keys.
	Keys *auth.Keys
	// LogKeys are the checkpoints' verifier keys, ManifestKeys the export
	// manifests', LogOrigin the log's origin prefix; Signer signs export
	// manifests (nil without a manifest key).
	LogKeys, ManifestKeys []string
	LogOrigin             string
	Signer                note.Signer
	// Admin is the operators' API (off without an address).
	Admin adminConfig
}

// configFromEnv reads the configuration and reports every value that fails
// to parse or cannot work, and every unknown AUDITTRAIL_* variable.
func configFromEnv(env *config.Env) (apiConfig, error) {
	c := apiConfig{
		Addr:          config.APIAddr.Get(env),
		ClickHouse:    chconn.FromEnv(env),
		Kafka:         kafkaconn.FromEnv(env, topics.Events, topics.DefaultPartitions),
		RetentionDays: config.RetentionDays.Get(env),
		CacheEntries:  config.TimelineCacheEntries.Get(env),
		CacheMB:       config.TimelineCacheMB.Get(env),
		SettingsTopic: config.SettingsTopic.Get(env),
		Events:        config.EventPolicy(env),
		Egress:        egress.FromEnv(env),
	}
	c.Kafka.ClientID = "audittrail-api"
	proxies, perr := httpserver.TrustedProxiesFromEnv(env)
	c.Proxies = proxies
	secret, jwksFile := config.JWTSecret.Get(env), config.JWKSFile.Get(env)
	errs := []error{perr, config.APIAddr.Check(c.Addr), config.RetentionDays.Check(c.RetentionDays), config.TimelineCacheEntries.Check(c.CacheEntries), config.TimelineCacheMB.Check(c.CacheMB)}
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
	c.ManifestKeys = config.ManifestVerifierKeys.Get(env)
	errs = append(errs, logKeys(&c, config.ManifestSigningKey.Get(env)))
	var aerr error
	c.Admin, aerr = adminFromEnv(env, c.Addr)
	errs = append(errs, aerr)
	errs = append(errs, env.Err(), config.CheckUnknown(), c.ClickHouse.Validate(), c.Kafka.Validate(), c.Egress.Validate())
	return c, errors.Join(errs...)
}

// logKeys checks the verifier keys (no key may verify both checkpoints
// and manifests) and makes the manifest signer, when a key is set; its
// verifier key must be among the manifest keys, never the checkpoints'.
func logKeys(c *apiConfig, signingKey string) error {
	checkpointKeys := map[string]bool{}
	for _, k := range c.LogKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return fmt.Errorf("%s: %q is not a note verifier key (%v)", config.VerifierKeys.Name, k, err)
		}
		checkpointKeys[fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())] = true
	}
	manifestKeys := map[string]bool{}
	for _, k := range c.ManifestKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return fmt.Errorf("%s: %q is not a note verifier key (%v)", config.ManifestVerifierKeys.Name, k, err)
		}
		id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
		if checkpointKeys[id] {
			return fmt.Errorf("%s: key %s also verifies checkpoints (%s): give manifests their own key", config.ManifestVerifierKeys.Name, id, config.VerifierKeys.Name)
		}
		manifestKeys[id] = true
	}
	if signingKey == "" {
		return nil
	}
	s, err := note.NewSigner(signingKey)
	if err != nil {
		return config.ManifestSigningKey.Refused()
	}
	id := fmt.Sprintf("%s+%08x", s.Name(), s.KeyHash())
	switch {
	case checkpointKeys[id]:
		return fmt.Errorf("%s is a checkpoint key (in %s): the API must not hold the checkpoints' signing key; generate another", config.ManifestSigningKey.Name, config.VerifierKeys.Name)
	case !manifestKeys[id]:
		return fmt.Errorf("%s lacks the verifier key of %s (key %s): add it, or manifests will not verify", config.ManifestVerifierKeys.Name, config.ManifestSigningKey.Name, id)
	}
	c.Signer = s
	return nil
}
