package auth

import (
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestVerifyTimeClaimsAndCritHeader(t *testing.T) {
	secret := []byte("test-secret-test-secret-test-secret!")
	v := NewHMAC(secret)
	now := time.Now()
	exp := now.Add(time.Hour).Unix()
	signed := func(header map[string]any, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		for k, val := range header {
			tok.Header[k] = val
		}
		s, err := tok.SignedString(secret)
		require.NoError(t, err)
		return s
	}
	base := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "usr_1", "exp": exp, "workspaces": map[string]string{"ws_1": RoleOwner}}
		for k, val := range extra {
			if val == nil {
				delete(c, k)
				continue
			}
			c[k] = val
		}
		return c
	}
	future := now.Add(10 * time.Minute).Unix()
	withinLeeway := now.Add(Leeway / 2).Unix()
	tests := []struct {
		name   string
		token  string
		reason string // "" when the token is valid
	}{
		{"valid", signed(nil, base(nil)), ""},
		{"iat now", signed(nil, base(jwt.MapClaims{"iat": now.Unix()})), ""},
		{"iat within the leeway", signed(nil, base(jwt.MapClaims{"iat": withinLeeway})), ""},
		{"nbf within the leeway", signed(nil, base(jwt.MapClaims{"nbf": withinLeeway})), ""},
		{"fractional exp", signed(nil, base(jwt.MapClaims{"exp": float64(exp) + 0.5})), ""},
		{"exp as a numeric string", signed(nil, base(jwt.MapClaims{"exp": strconv.FormatInt(exp, 10)})), "NumericDate"},
		{"exp as a string", signed(nil, base(jwt.MapClaims{"exp": "tomorrow"})), "malformed"},
		{"exp as a boolean", signed(nil, base(jwt.MapClaims{"exp": true})), "malformed"},
		{"exp missing", signed(nil, base(jwt.MapClaims{"exp": nil})), "no exp"},
		{"exp passed", signed(nil, base(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()})), "expired"},
		{"iat as a numeric string", signed(nil, base(jwt.MapClaims{"iat": "1700000000"})), "NumericDate"},
		{"nbf as a numeric string", signed(nil, base(jwt.MapClaims{"nbf": "1700000000"})), "NumericDate"},
		{"iat in the future", signed(nil, base(jwt.MapClaims{"iat": future})), "issued in the future"},
		{"nbf in the future", signed(nil, base(jwt.MapClaims{"nbf": future})), "not valid yet"},
		{"crit header", signed(map[string]any{"crit": []string{"exp"}}, base(nil)), "crit"},
		{"empty crit header", signed(map[string]any{"crit": []string{}}, base(nil)), "crit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token)
			if tt.reason == "" {
				require.NoError(t, err)
				require.Equal(t, "usr_1", c.Subject)
				return
			}
			require.ErrorIs(t, err, ErrUnauthenticated)
			require.ErrorContains(t, err, tt.reason)
			for _, leak := range []string{"json:", "Go value", "NumericData", "float", "bool"} {
				require.NotContains(t, err.Error(), leak, "the reason is ours, not the parser's")
			}
		})
	}
}
