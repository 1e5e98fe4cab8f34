package ingest

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/audittrail/audittrail/schemas/event"
)

// LegacyCredentialPrefix starts the credential id of a token from
// AUDITTRAIL_INGEST_TOKENS.
const LegacyCredentialPrefix = "legacy-"

// legacyCredentialID is the credential id of an AUDITTRAIL_INGEST_TOKENS
// token: "legacy-" and the first 12 hex digits of the token's SHA-256. It
// names the token in stored events without revealing it, and stays the
// same across restarts and gateway replicas.
func legacyCredentialID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return LegacyCredentialPrefix + hex.EncodeToString(sum[:6])
}

// stampSender records who sent e: the credential the request authenticated
// with. A producer cannot name a credential itself: an event that carries
// sender.credential_id is refused (400 naming the field) rather than
// overwritten, so a producer that tries learns so. sender.producer is the
// producer's own, self-declared name and passes as sent.
func stampSender(e *event.Event, credentialID string) error {
	if e.Sender.CredentialID != "" {
		return &event.ValidationError{Fields: []event.FieldError{{Field: "sender.credential_id",
			Message: "is set by the gateway from the ingest credential; remove it from the event"}}}
	}
	e.Sender.CredentialID = credentialID
	return nil
}
