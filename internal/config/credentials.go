package config

import "github.com/audittrail/audittrail/schemas/topics"

// CredentialsTopic reads AUDITTRAIL_CREDENTIALS_TOPIC, the compacted topic
// of producer credentials: the ingest gateway reads it, the credentials
// command writes it.
func CredentialsTopic(e *Env) string {
	return e.String("AUDITTRAIL_CREDENTIALS_TOPIC", topics.Credentials)
}
