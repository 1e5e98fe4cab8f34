// Package credential is the contract of producer credentials.
//
// A credential says who may write which events into which workspaces through
// the ingest gateway. It is a record on the compacted credentials topic
// (key: its id, value: the JSON of Record); the gateway reads the topic, the
// credentials admin command writes it.
//
// A producer sends the bearer token "<id>.<secret>". The id locates the
// record, so the gateway hashes the secret once and compares it in constant
// time with the stored SHA-256. Secrets are 32 random bytes, so a fast hash
// is enough: nobody can search a 256-bit space, unlike a password's.
package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// IDPrefix starts the id of every credential the admin command creates.
const IDPrefix = "pc_"

// LegacyIDPrefix starts the derived id of an AUDITTRAIL_INGEST_TOKENS token.
const LegacyIDPrefix = "legacy-"

// PlatformWorkspace is the workspace of the platform-level trail: changes to
// credentials are recorded there. No credential may write into it (the
// gateway refuses it); only the admin command publishes there.
const PlatformWorkspace = "audittrail:platform"

// All is the scope entry that matches every workspace or category.
const All = "*"

// Record is one credential as stored on the topic. Secrets are never
// stored, only their SHA-256 (hex).
type Record struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Scopes Scopes `json:"scopes"`
	// SecretSHA256 is the hash of the current secret.
	SecretSHA256 string `json:"secret_sha256"`
	// PreviousSecretSHA256 is the hash of the secret before the last
	// rotation, valid until PreviousValidUntil.
	PreviousSecretSHA256 string     `json:"previous_secret_sha256,omitempty"`
	PreviousValidUntil   *time.Time `json:"previous_valid_until,omitempty"`
	CreatedAt            time.Time  `json:"created_at"`
	RotatedAt            *time.Time `json:"rotated_at,omitempty"`
	RevokedAt            *time.Time `json:"revoked_at,omitempty"`
}

// Scopes say what a credential may write. Each list holds exact values,
// prefixes ending in "*" ("ws_eu_*"), or All alone.
type Scopes struct {
	Workspaces []string `json:"workspaces"`
	Categories []string `json:"categories"`
}

// ErrMalformedToken is returned by ParseToken for a token that is not
// "<id>.<secret>" with a credential id.
var ErrMalformedToken = errors.New(`a producer token is "<id>.<secret>"`)

// ParseToken splits a bearer token into the credential id and the secret.
func ParseToken(token string) (id, secret string, err error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || !strings.HasPrefix(id, IDPrefix) || len(id) == len(IDPrefix) || secret == "" || strings.Contains(secret, ".") {
		return "", "", ErrMalformedToken
	}
	return id, secret, nil
}

// Token joins an id and a secret into the bearer token a producer sends.
func Token(id, secret string) string { return id + "." + secret }

// NewID returns a fresh credential id: IDPrefix and 12 random base32
// characters (60 bits).
func NewID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return IDPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:12]
}

// NewSecret returns 32 random bytes, base64url-encoded without padding.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash returns the hex SHA-256 of a secret, as stored in a Record.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// LegacyID is the credential id of a legacy ingest token: LegacyIDPrefix
// and the first 12 hex characters of its SHA-256.
func LegacyID(token string) string { return LegacyIDPrefix + Hash(token)[:12] }

// Verify reports whether secret opens r at now: r is not revoked and the
// secret is the current one, or the previous one before
// PreviousValidUntil. Hashes are compared in constant time.
func (r *Record) Verify(secret string, now time.Time) bool {
	if r.RevokedAt != nil {
		return false
	}
	h := []byte(Hash(secret))
	ok := subtle.ConstantTimeCompare(h, []byte(r.SecretSHA256)) == 1
	if r.PreviousSecretSHA256 != "" && r.PreviousValidUntil != nil && now.Before(*r.PreviousValidUntil) {
		ok = subtle.ConstantTimeCompare(h, []byte(r.PreviousSecretSHA256)) == 1 || ok
	}
	return ok
}

// Rotate makes secret the current one; the current secret stays valid
// until now+grace (grace 0: not at all).
func (r *Record) Rotate(secret string, now time.Time, grace time.Duration) {
	now = now.UTC()
	r.PreviousSecretSHA256, r.PreviousValidUntil = "", nil
	if grace > 0 {
		until := now.Add(grace)
		r.PreviousSecretSHA256, r.PreviousValidUntil = r.SecretSHA256, &until
	}
	r.SecretSHA256 = Hash(secret)
	r.RotatedAt = &now
}

// Validate reports a record that cannot be used.
func (r *Record) Validate() error {
	var errs []error
	if !strings.HasPrefix(r.ID, IDPrefix) || len(r.ID) == len(IDPrefix) || strings.Contains(r.ID, ".") {
		errs = append(errs, fmt.Errorf("id %q: want %s followed by letters and digits", r.ID, IDPrefix))
	}
	if strings.TrimSpace(r.Name) == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if len(r.SecretSHA256) != 64 {
		errs = append(errs, errors.New("secret_sha256 is not a SHA-256"))
	}
	if err := r.Scopes.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
