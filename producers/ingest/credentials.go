package ingest

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/schemas/credential"
	"github.com/audittrail/audittrail/schemas/event"
)

// Credentials finds producer credentials by id.
type Credentials interface {
	Lookup(id string) (credential.Record, bool)
}

// CredentialStore is the gateway's copy of the credentials topic: Apply
// is the kvtopic table's change callback, Lookup what the gateway asks. It
// is safe for concurrent use; the zero value is empty and ready to use.
type CredentialStore struct {
	mu      sync.RWMutex
	records map[string]credential.Record
	// OnInvalid, when set, is told about a record that cannot be decoded or
	// validated (it is ignored, so the credential opens nothing).
	OnInvalid func(key string, err error)
}

// Apply stores the record of key (nil value: deleted). An undecodable or
// invalid record, or one whose id is not its key, removes the key.
func (s *CredentialStore) Apply(key string, value []byte) {
	var r credential.Record
	var err error
	if value != nil {
		if err = json.Unmarshal(value, &r); err == nil {
			err = r.Validate()
		}
		if err == nil && r.ID != key {
			err = fmt.Errorf("record id %q differs from its key", r.ID)
		}
		if err != nil && s.OnInvalid != nil {
			s.OnInvalid(key, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == nil || err != nil {
		delete(s.records, key)
		return
	}
	if s.records == nil {
		s.records = map[string]credential.Record{}
	}
	s.records[key] = r
}

// Lookup returns the credential with id.
func (s *CredentialStore) Lookup(id string) (credential.Record, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.records[id]
	return r, ok
}

// Principal is who sent a request: the credential id (a producer
// credential's, or a legacy token's derived one) and what it may write.
type Principal struct {
	CredentialID string
	Scopes       credential.Scopes
}

// legacyToken is an AUDITTRAIL_INGEST_TOKENS entry: all scopes.
type legacyToken struct {
	token []byte
	id    string
}

func newLegacyTokens(tokens []string) []legacyToken {
	out := make([]legacyToken, len(tokens))
	for i, t := range tokens {
		out[i] = legacyToken{token: []byte(t), id: credential.LegacyID(t)}
	}
	return out
}

// authenticate checks Authorization: Bearer <token>; the scheme is
// case-insensitive (RFC 7235), as on the read API. The token is a legacy
// ingest token (compared in constant time with every one) or a producer
// credential's "<id>.<secret>".
func (g *Gateway) authenticate(header string, now time.Time) (Principal, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, false
	}
	found := -1
	for i, t := range g.legacy {
		if subtle.ConstantTimeCompare(t.token, []byte(token)) == 1 {
			found = i
		}
	}
	if found >= 0 {
		return Principal{CredentialID: g.legacy[found].id, Scopes: credential.AllScopes()}, true
	}
	if g.cfg.Credentials == nil {
		return Principal{}, false
	}
	id, secret, err := credential.ParseToken(token)
	if err != nil {
		return Principal{}, false
	}
	rec, ok := g.cfg.Credentials.Lookup(id)
	if !ok || !rec.Verify(secret, now) {
		return Principal{}, false
	}
	return Principal{CredentialID: rec.ID, Scopes: rec.Scopes}, true
}

// outOfScope returns the 403 for the first event p may not write (its
// workspace, else its category), or nil when p may write them all.
func outOfScope(p Principal, events []event.Event, batch bool) *httpserver.Error {
	for i := range events {
		field, what := "", ""
		switch e := &events[i]; {
		case !p.Scopes.AllowsWorkspace(e.WorkspaceID):
			field, what = "workspace_id", fmt.Sprintf("workspace %q", e.WorkspaceID)
		case !p.Scopes.AllowsCategory(e.Category):
			field, what = "event", fmt.Sprintf("category %q (event %q)", e.Category, e.Event)
		default:
			continue
		}
		if batch {
			field = fmt.Sprintf("batch[%d].%s", i, field)
		}
		return &httpserver.Error{Status: http.StatusForbidden, Code: "forbidden", Field: field,
			Message: fmt.Sprintf("credential %s may not write %s; nothing was published", p.CredentialID, what)}
	}
	return nil
}
