package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

var b64 = base64.RawURLEncoding.EncodeToString

func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func claims(sub string, ttl time.Duration) Claims {
	return Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, ExpiresAt: jwt.NewNumericDate(time.Now().Add(ttl))},
		Workspaces: map[string]string{"ws_1": RoleOwner}}
}

func TestJWKSVerifiesRS256AndEdDSA(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	doc := fmt.Sprintf(`{"keys": [
		{"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "n": %q, "e": %q},
		{"kty": "OKP", "kid": "e1", "crv": "Ed25519", "x": %q},
		{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}
	]}`, b64(rsaKey.N.Bytes()), b64(big.NewInt(int64(rsaKey.E)).Bytes()), b64(edPub))
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))

	secret := []byte("test-secret-test-secret-test-secret!")
	keys := NewKeys(secret)
	require.NoError(t, keys.AddJWKSFile(path))
	require.Equal(t, []string{"EdDSA", "HS256", "RS256"}, keys.Algorithms())
	v, err := keys.Verifier()
	require.NoError(t, err)

	good := map[string]string{
		"rs256": sign(t, jwt.SigningMethodRS256, "r1", rsaKey, claims("usr_r", time.Hour)),
		"eddsa": sign(t, jwt.SigningMethodEdDSA, "e1", edPriv, claims("usr_e", time.Hour)),
		"hs256": sign(t, jwt.SigningMethodHS256, "", secret, claims("usr_h", time.Hour)),
	}
	for name, tok := range good {
		c, err := v.Verify(tok)
		require.NoError(t, err, name)
		require.Equal(t, RoleOwner, c.Workspaces["ws_1"])
	}

	bad := map[string]string{
		"unknown kid":         sign(t, jwt.SigningMethodRS256, "r2", rsaKey, claims("u", time.Hour)),
		"no kid":              sign(t, jwt.SigningMethodRS256, "", rsaKey, claims("u", time.Hour)),
		"other key, same kid": sign(t, jwt.SigningMethodRS256, "r1", otherRSA, claims("u", time.Hour)),
		"alg of another key":  sign(t, jwt.SigningMethodEdDSA, "r1", edPriv, claims("u", time.Hour)),
		"expired":             sign(t, jwt.SigningMethodEdDSA, "e1", edPriv, claims("u", -time.Hour)),
		"no sub":              sign(t, jwt.SigningMethodEdDSA, "e1", edPriv, claims("", time.Hour)),
		"control in sub":      sign(t, jwt.SigningMethodEdDSA, "e1", edPriv, claims("a\x01b", time.Hour)),
		"sub too long":        sign(t, jwt.SigningMethodEdDSA, "e1", edPriv, claims(strings.Repeat("a", 257), time.Hour)),
		"RS384 not accepted":  sign(t, jwt.SigningMethodRS384, "r1", rsaKey, claims("u", time.Hour)),
		"alg none":            sign(t, jwt.SigningMethodNone, "r1", jwt.UnsafeAllowNoneSignatureType, claims("u", time.Hour)),
	}
	for name, tok := range bad {
		_, err := v.Verify(tok)
		require.ErrorIs(t, err, ErrUnauthenticated, name)
	}

	// Without a secret, HS256 tokens are refused even when signed with
	// the public key's bytes (algorithm confusion).
	onlyJWKS := NewKeys(nil)
	require.NoError(t, onlyJWKS.AddJWKS([]byte(doc)))
	v2, err := onlyJWKS.Verifier()
	require.NoError(t, err)
	_, err = v2.Verify(good["hs256"])
	require.ErrorIs(t, err, ErrUnauthenticated)
	_, err = v2.Verify(sign(t, jwt.SigningMethodHS256, "r1", rsaKey.N.Bytes(), claims("u", time.Hour)))
	require.ErrorIs(t, err, ErrUnauthenticated)
	_, err = v2.Verify(good["rs256"])
	require.NoError(t, err)
}

func TestJWKSRejectsBadDocuments(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	for name, doc := range map[string]string{
		"not json":     `{`,
		"no keys":      `{"keys": []}`,
		"weak rsa":     fmt.Sprintf(`{"keys": [{"kty": "RSA", "kid": "w", "n": %q, "e": "AQAB"}]}`, b64(weak.N.Bytes())),
		"rsa alg":      `{"keys": [{"kty": "RSA", "kid": "w", "alg": "RS512", "n": "AQAB", "e": "AQAB"}]}`,
		"bad x":        `{"keys": [{"kty": "OKP", "kid": "e", "crv": "Ed25519", "x": "AAAA"}]}`,
		"x448":         `{"keys": [{"kty": "OKP", "kid": "e", "crv": "Ed448", "x": "AAAA"}]}`,
		"ec":           `{"keys": [{"kty": "EC", "kid": "e"}]}`,
		"no kid":       fmt.Sprintf(`{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": %q}]}`, b64(make([]byte, 32))),
		"kid repeated": fmt.Sprintf(`{"keys": [{"kty": "OKP", "kid": "a", "crv": "Ed25519", "x": %q}, {"kty": "OKP", "kid": "a", "crv": "Ed25519", "x": %q}]}`, b64(make([]byte, 32)), b64(make([]byte, 32))),
	} {
		require.Error(t, NewKeys(nil).AddJWKS([]byte(doc)), name)
	}
	_, err = NewKeys(nil).Verifier()
	require.ErrorContains(t, err, "AUDITTRAIL_JWKS_FILE")
}
