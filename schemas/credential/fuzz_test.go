package credential_test

import (
	"strings"
	"testing"

	"github.com/audittrail/audittrail/schemas/credential"
)

// FuzzParseToken: a bearer token is untrusted input; whatever it is,
// parsing never panics, and a parsed token joins back to itself.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"pc_abcdefghijkl.secret", "pc_.x", "pc_a.", "a.b.c", "", "pc_a.b.c", "\x00pc_.\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, secret, err := credential.ParseToken(token)
		if err != nil {
			return
		}
		if credential.Token(id, secret) != token || !strings.HasPrefix(id, credential.IDPrefix) || secret == "" {
			t.Fatalf("ParseToken(%q) = %q, %q", token, id, secret)
		}
	})
}
