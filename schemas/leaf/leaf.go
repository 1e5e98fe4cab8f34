// Package leaf defines the canonical encoding of a stored event as a leaf
// of its workspace's integrity log (see docs/integrity.md), and the leaf's
// hash.
//
// The encoding is versioned and never changes for a version: a leaf hash
// computed today must be recomputed identically from the stored row by any
// later release, whatever the API does with events meanwhile. Version 1
// (Version) is the line "audittrail-leaf/v1\n" followed by the fields of
// Fields, in that order, each as a 4-byte big-endian length and its bytes:
// a String column as its bytes, an Int64 column (the nanosecond times) as
// 8 bytes big-endian two's complement. The second-precision columns
// timestamp and received_at are truncations of timestamp_ns and
// received_at_ns, so they are covered by them; inserted_at is when the
// server stored a copy, not part of the event, and differs between copies
// of one event, so it is left out.
//
// A new field or a changed rule is a new version with a new version line;
// testdata/v1.json pins the bytes and hashes of version 1.
package leaf

import (
	"crypto/sha256"
	"encoding/binary"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Version is the first line of every encoding this package produces.
const Version = "audittrail-leaf/v1\n"

// Fields are the events table's columns a version 1 leaf covers, in the
// order of the encoding.
var Fields = []string{
	"workspace_id", "timestamp_ns", "id", "event", "category",
	"actor_type", "actor_id", "actor_name", "actor_email",
	"resource_type", "resource_id", "resource_name", "changes",
	"context_ip", "context_user_agent", "context_request_id", "properties",
	"received_at_ns", "sender_credential_id", "sender_producer",
}

// Encode returns the version 1 canonical encoding of a stored event row.
// It is safe for concurrent use.
func Encode(r *migrations.Row) []byte {
	return appendEncoding(make([]byte, 0, encodedSize(r)), r)
}

// hashBuffer is the size of the buffer Hash encodes a row in on its
// stack: rows up to it are hashed without allocating (most events: a few
// hundred bytes; larger ones allocate their encoding).
const hashBuffer = 2048

// Hash returns the leaf hash of a stored event row: the RFC 6962 record
// hash of Encode(r), SHA-256(0x00 || Encode(r)), as tlog.RecordHash.
func Hash(r *migrations.Row) tlog.Hash {
	var buf [hashBuffer]byte
	b := buf[:0]
	if n := 1 + encodedSize(r); n > len(buf) {
		b = make([]byte, 0, n)
	}
	return sha256.Sum256(appendEncoding(append(b, 0x00), r))
}

// texts are the String columns between timestamp_ns and received_at_ns,
// in the encoding's order.
func texts(r *migrations.Row) [15]string {
	return [...]string{
		r.ID, r.Event, r.Category,
		r.ActorType, r.ActorID, r.ActorName, r.ActorEmail,
		r.ResourceType, r.ResourceID, r.ResourceName, r.Changes,
		r.ContextIP, r.ContextUserAgent, r.ContextRequestID, r.Properties,
	}
}

func encodedSize(r *migrations.Row) int {
	n := len(Version) + 4 + len(r.WorkspaceID) + 2*(4+8) + 4 + len(r.SenderCredentialID) + 4 + len(r.SenderProducer)
	for _, s := range texts(r) {
		n += 4 + len(s)
	}
	return n
}

// appendEncoding appends the version 1 encoding of r to b.
func appendEncoding(b []byte, r *migrations.Row) []byte {
	b = append(b, Version...)
	b = appendString(b, r.WorkspaceID)
	b = appendInt(b, r.TimestampNs)
	for _, s := range texts(r) {
		b = appendString(b, s)
	}
	b = appendInt(b, r.ReceivedAtNs)
	b = appendString(b, r.SenderCredentialID)
	return appendString(b, r.SenderProducer)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendInt(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}
