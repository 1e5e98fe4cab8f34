package ingest

import "github.com/audittrail/audittrail/schemas/event"

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
