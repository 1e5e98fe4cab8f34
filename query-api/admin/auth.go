package admin

// Operator credentials: name:token pairs (config.AdminTokens). A
// request's bearer token is compared with every one in constant time (as
// SHA-256 digests, so neither its length nor its content shows in the
// time); the matching name is the operator recorded in the audit events.

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/config"
	"github.com/audittrail/audittrail/internal/httpserver"
)

// MinTokenLen is the shortest operator token accepted.
const MinTokenLen = 32

var operatorName = regexp.MustCompile(`^[A-Za-z0-9._@\-]{1,64}$`)

// Operator is one operator credential.
type Operator struct {
	Name   string
	digest [sha256.Size]byte
}

// Operators are the accepted operator credentials.
type Operators []Operator

// ParseOperators reads name:token pairs. The error names the bad entry by
// its position and never quotes a token.
func ParseOperators(pairs []string) (Operators, error) {
	out := make(Operators, 0, len(pairs))
	seen := map[[sha256.Size]byte]bool{}
	for i, p := range pairs {
		name, token, ok := strings.Cut(p, ":")
		name, token = strings.TrimSpace(name), strings.TrimSpace(token)
		switch {
		case !ok:
			return nil, fmt.Errorf("entry %d: want name:token", i+1)
		case !operatorName.MatchString(name):
			return nil, fmt.Errorf("entry %d: the name must be 1-64 letters, digits, '.', '_', '@' or '-'", i+1)
		case len(token) < MinTokenLen:
			return nil, fmt.Errorf("entry %d (%s): the token must have at least %d characters", i+1, name, MinTokenLen)
		}
		d := sha256.Sum256([]byte(token))
		if seen[d] {
			return nil, fmt.Errorf("entry %d (%s): the same token as an earlier entry; give each operator its own", i+1, name)
		}
		seen[d] = true
		out = append(out, Operator{Name: name, digest: d})
	}
	return out, nil
}

// lookup returns the operator whose token is token.
func (ops Operators) lookup(token string) (string, bool) {
	d := sha256.Sum256([]byte(token))
	found := -1
	for i := range ops {
		if subtle.ConstantTimeCompare(ops[i].digest[:], d[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return ops[found].Name, true
}

const operatorKey = "admin_operator"

// authenticate admits a request with an operator's bearer token and puts
// the operator's name in the context. Tokens are accepted in the
// Authorization header only, never in the URL. A refusal is logged with
// the client's address (never what it sent), to spot guessing.
func (h *handler) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	ops := h.o.Operators
	return func(c echo.Context) error {
		scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		token = strings.TrimSpace(token)
		name, found := "", false
		if ok && strings.EqualFold(scheme, "Bearer") && token != "" {
			name, found = ops.lookup(token)
		}
		if !found {
			h.o.Log.Warn("admin API: credentials refused", "client_ip", c.RealIP(), "route", c.Path(), "had_bearer", ok && token != "")
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="audittrail-admin"`)
			return &httpserver.Error{Status: http.StatusUnauthorized, Code: "unauthorized",
				Message: "send an operator token (" + config.AdminTokens.Name + ") as Authorization: Bearer <token>"}
		}
		c.Set(operatorKey, name)
		return next(c)
	}
}

// operator returns the authenticated operator's name.
func operator(c echo.Context) string {
	name, _ := c.Get(operatorKey).(string)
	return name
}
