// Package auth authenticates read-API requests with bearer JWTs and
// authorizes them per workspace. Tokens carry sub (required), name, email,
// exp (required) and workspaces, an object mapping workspace id to role
// ({"ws_1": "owner", "ws_2": "member"}). Only the owner role may read a
// workspace's trail.
//
// Verification is pluggable: NewVerifier takes any jwt.Keyfunc with the
// algorithms it accepts. NewHMAC verifies HS256 with a shared secret;
// Keys combines that secret with RS256 and EdDSA public keys from a JWKS
// document (RFC 7517), looked up by the token's kid.
package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/internal/httpserver"
)

// RoleOwner is the only role that may read the audit trail.
const RoleOwner = "owner"

// Claims are the claims the API reads.
type Claims struct {
	jwt.RegisteredClaims
	Name       string            `json:"name,omitempty"`
	Email      string            `json:"email,omitempty"`
	Workspaces map[string]string `json:"workspaces,omitempty"`
}

// Verifier checks token signatures and claims. It is safe for concurrent use.
type Verifier struct {
	keyFunc jwt.Keyfunc
	parser  *jwt.Parser
}

// Leeway is the clock skew allowed when checking exp, nbf and iat.
const Leeway = 30 * time.Second

// NewVerifier verifies tokens signed with one of methods, with keys from
// keyFunc. A token must carry exp; exp, nbf and iat must be JSON numbers
// (NumericDate); nbf and iat may not be in the future beyond Leeway; a
// token with a crit header is refused (no extension is understood).
func NewVerifier(keyFunc jwt.Keyfunc, methods ...string) *Verifier {
	noCrit := func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritical
		}
		return keyFunc(t)
	}
	return &Verifier{keyFunc: noCrit, parser: jwt.NewParser(
		jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(Leeway))}
}

// NewHMAC verifies HS256 tokens signed with secret.
func NewHMAC(secret []byte) *Verifier {
	return NewVerifier(func(*jwt.Token) (any, error) { return secret, nil }, jwt.SigningMethodHS256.Alg())
}

// MaxSubjectLen is the longest sub claim accepted (the contract's limit for
// an actor id).
const MaxSubjectLen = 256

// ErrUnauthenticated is returned for missing, malformed, badly signed or
// expired tokens.
var ErrUnauthenticated = errors.New("unauthenticated")

var (
	errCritical       = errors.New("crit header")
	errNotNumericDate = errors.New("time claim not a number")
)

// Verify parses and checks a token. Its errors wrap ErrUnauthenticated and
// say what is wrong in a fixed sentence (never the parser's text, which can
// name Go types).
func (v *Verifier) Verify(token string) (*Claims, error) {
	var c Claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.keyFunc); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnauthenticated, reason(err))
	}
	if err := numericDates(token); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnauthenticated, reason(err))
	}
	switch {
	case c.Subject == "":
		return nil, fmt.Errorf("%w: token has no sub claim", ErrUnauthenticated)
	case len(c.Subject) > MaxSubjectLen || strings.ContainsFunc(c.Subject, unicode.IsControl):
		// The subject is recorded as the actor of the reads it makes.
		return nil, fmt.Errorf("%w: sub claim must be at most %d bytes without control characters", ErrUnauthenticated, MaxSubjectLen)
	}
	return &c, nil
}

// reason is the answer's sentence for a failed verification.
func reason(err error) string {
	switch {
	case errors.Is(err, errCritical):
		return "the token has a crit header, which this API does not support"
	case errors.Is(err, errNotNumericDate):
		return "exp, nbf and iat must be numbers of seconds since 1970 (NumericDate)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the token has no exp claim"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet (nbf is in the future)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the signature does not verify, or the algorithm or key id is not accepted"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the token is malformed or a claim has the wrong type"
	}
	return "the token's claims are invalid"
}

// numericDates checks that exp, nbf and iat, when present, are JSON
// numbers: golang-jwt also reads a numeric string ("exp": "1700000000").
func numericDates(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwt.ErrTokenMalformed
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return jwt.ErrTokenMalformed
	}
	var dates struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(payload, &dates); err != nil {
		return jwt.ErrTokenMalformed
	}
	for _, d := range []json.RawMessage{dates.Exp, dates.Nbf, dates.Iat} {
		if len(d) == 0 {
			continue
		}
		if b := d[0]; b != '-' && (b < '0' || b > '9') {
			return errNotNumericDate
		}
	}
	return nil
}

const claimsKey = "audittrail.claims"

// Middleware authenticates every request it wraps: 401 unless a valid
// bearer token is present.
func (v *Verifier) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// The scheme is case-insensitive (RFC 7235).
			scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				return unauthorized("missing bearer token: send Authorization: Bearer <JWT>")
			}
			claims, err := v.Verify(strings.TrimSpace(token))
			if err != nil {
				return unauthorized("invalid token: " + strings.TrimPrefix(err.Error(), ErrUnauthenticated.Error()+": "))
			}
			c.Set(claimsKey, claims)
			return next(c)
		}
	}
}

// FromContext returns the claims Middleware stored, or nil.
func FromContext(c echo.Context) *Claims {
	claims, _ := c.Get(claimsKey).(*Claims)
	return claims
}

// RequireOwner allows the request only when the token names the workspace in
// path parameter param with the owner role: 404 when the workspace is not in
// the token (its existence is not revealed), 403 for any other role.
func RequireOwner(param string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			claims := FromContext(c)
			if claims == nil {
				return unauthorized("missing bearer token")
			}
			role, ok := claims.Workspaces[c.Param(param)]
			switch {
			case !ok:
				return &httpserver.Error{Status: http.StatusNotFound, Code: "workspace_not_found",
					Message: "no such workspace for this token", Field: "workspace_id"}
			case role != RoleOwner:
				return &httpserver.Error{Status: http.StatusForbidden, Code: "forbidden",
					Message: "only workspace owners can view the audit trail", Field: "workspace_id"}
			}
			return next(c)
		}
	}
}

func unauthorized(msg string) error {
	return &httpserver.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg}
}

// Mint signs an HS256 token; used by the token command and tests.
func Mint(secret []byte, sub, name, email string, workspaces map[string]string, ttl time.Duration, now time.Time) (string, error) {
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Name: name, Email: email, Workspaces: workspaces,
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
