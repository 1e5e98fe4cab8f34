package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/golang-jwt/jwt/v5"
	"github.com/segmentio/encoding/json"
)

// Keys is a set of verification keys: an optional HS256 secret and public
// keys (RS256, EdDSA) by key id. Build it with NewKeys and AddJWKS, then
// Verifier. It is safe for concurrent use once built.
type Keys struct {
	secret []byte
	public map[string]publicKey // by kid
}

type publicKey struct {
	alg string
	key any // *rsa.PublicKey or ed25519.PublicKey
}

// NewKeys returns a key set holding secret for HS256 (none when empty).
func NewKeys(secret []byte) *Keys {
	return &Keys{secret: secret, public: map[string]publicKey{}}
}

// MinRSABits is the smallest RSA modulus accepted.
const MinRSABits = 2048

// jwk is the part of a JSON Web Key the API reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
}

// AddJWKSFile adds the keys of the JWKS document at path.
func (k *Keys) AddJWKSFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read JWKS: %w", err)
	}
	if err := k.AddJWKS(b); err != nil {
		return fmt.Errorf("JWKS %s: %w", path, err)
	}
	return nil
}

// AddJWKS adds the signing keys of a JWKS document ({"keys": [...]}):
// RSA keys (RS256, at least MinRSABits) and OKP Ed25519 keys (EdDSA). Each
// needs a kid unique in the set; keys whose use is not "sig" are skipped,
// any other key is an error naming it.
func (k *Keys) AddJWKS(doc []byte) error {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return fmt.Errorf("decode JWKS: %w", err)
	}
	if len(set.Keys) == 0 {
		return errors.New(`JWKS has no keys: want {"keys": [...]}`)
	}
	for i, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		pk, err := parseJWK(j)
		if err != nil {
			return fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err)
		}
		if j.Kid == "" {
			return fmt.Errorf("key %d: kid is required", i)
		}
		if _, dup := k.public[j.Kid]; dup {
			return fmt.Errorf("key %d: kid %q appears twice", i, j.Kid)
		}
		k.public[j.Kid] = pk
	}
	return nil
}

func parseJWK(j jwk) (publicKey, error) {
	switch j.Kty {
	case "RSA":
		if j.Alg != "" && j.Alg != "RS256" {
			return publicKey{}, fmt.Errorf("alg %q: RSA keys are accepted for RS256 only", j.Alg)
		}
		n, err1 := base64.RawURLEncoding.DecodeString(j.N)
		e, err2 := base64.RawURLEncoding.DecodeString(j.E)
		if err := errors.Join(err1, err2); err != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return publicKey{}, errors.New("n and e must be base64url (no padding) big-endian integers")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < MinRSABits || pub.E < 3 || pub.E%2 == 0 {
			return publicKey{}, fmt.Errorf("RSA key too weak: want a modulus of %d bits or more and an odd exponent", MinRSABits)
		}
		return publicKey{alg: jwt.SigningMethodRS256.Alg(), key: pub}, nil
	case "OKP":
		if j.Crv != "Ed25519" || (j.Alg != "" && j.Alg != "EdDSA") {
			return publicKey{}, fmt.Errorf("OKP keys are accepted for crv Ed25519 with alg EdDSA only, got crv %q alg %q", j.Crv, j.Alg)
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return publicKey{}, errors.New("x must be a base64url (no padding) 32-byte Ed25519 public key")
		}
		return publicKey{alg: jwt.SigningMethodEdDSA.Alg(), key: ed25519.PublicKey(x)}, nil
	}
	return publicKey{}, fmt.Errorf("kty %q is not supported: want RSA or OKP", j.Kty)
}

// Algorithms returns the signing algorithms the set can verify.
func (k *Keys) Algorithms() []string {
	var algs []string
	if len(k.secret) > 0 {
		algs = append(algs, jwt.SigningMethodHS256.Alg())
	}
	for _, pk := range k.public {
		if !slices.Contains(algs, pk.alg) {
			algs = append(algs, pk.alg)
		}
	}
	slices.Sort(algs)
	return algs
}

// Keyfunc picks the key for a token: the secret for HS256, otherwise the
// public key named by the token's kid, which must be of the token's
// algorithm.
func (k *Keys) Keyfunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if len(k.secret) == 0 {
			return nil, errors.New("HS256 tokens are not accepted")
		}
		return k.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	pk, ok := k.public[kid]
	if !ok {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	if pk.alg != alg {
		return nil, fmt.Errorf("key %q is for %s, not %s", kid, pk.alg, alg)
	}
	return pk.key, nil
}

// Verifier returns a verifier over the set, or an error when it holds no
// key at all.
func (k *Keys) Verifier() (*Verifier, error) {
	algs := k.Algorithms()
	if len(algs) == 0 {
		return nil, fmt.Errorf("no verification key: set %s or %s", config.JWTSecret.Name, config.JWKSFile.Name)
	}
	return NewVerifier(k.Keyfunc, algs...), nil
}
