// Package manifest defines the self-proving export: the NDJSON line of a
// stored event (every field its leaf hash covers, see schemas/leaf) and
// the signed manifest that closes an export.
//
// An export is NDJSON: one Line per exported event, then one last line
// {"manifest": "<signed note>"}. The note's text is Header followed by
// the Manifest as one line of JSON; it is signed with the checkpoint key.
// The manifest names the query, carries the signed checkpoint the rows
// were checked against and each row's leaf index, and the stored hashes a
// verifier needs to rebuild every row's inclusion proof in that checkpoint
// (tlog.ProveRecord over Hashes). An export of a leaf-index range claims
// completeness: every index of the range is an exported row or is listed
// as absent (its event removed or expired; the manifest does not claim
// which).
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/encoding/json"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

// Header is the first line of a manifest note's text.
const Header = "audittrail-export-manifest/v1\n"

// MaxRows bounds the rows of one manifest (and of one self-proving
// export): the manifest is built in memory.
const MaxRows = 100_000

// Line is one exported event: the stored columns, named as in the events
// table, with the nanosecond times (which the leaf hash covers) and the
// JSON columns as the exact stored text.
type Line struct {
	WorkspaceID        string `json:"workspace_id"`
	TimestampNs        int64  `json:"timestamp_ns"`
	ID                 string `json:"id"`
	Event              string `json:"event"`
	Category           string `json:"category"`
	ActorType          string `json:"actor_type"`
	ActorID            string `json:"actor_id"`
	ActorName          string `json:"actor_name"`
	ActorEmail         string `json:"actor_email"`
	ResourceType       string `json:"resource_type"`
	ResourceID         string `json:"resource_id"`
	ResourceName       string `json:"resource_name"`
	Changes            string `json:"changes"`
	ContextIP          string `json:"context_ip"`
	ContextUserAgent   string `json:"context_user_agent"`
	ContextRequestID   string `json:"context_request_id"`
	Properties         string `json:"properties"`
	ReceivedAtNs       int64  `json:"received_at_ns"`
	SenderCredentialID string `json:"sender_credential_id"`
	SenderProducer     string `json:"sender_producer"`
}

// LineOf returns the line of a stored row.
func LineOf(r *migrations.Row) Line {
	return Line{WorkspaceID: r.WorkspaceID, TimestampNs: r.TimestampNs, ID: r.ID, Event: r.Event, Category: r.Category,
		ActorType: r.ActorType, ActorID: r.ActorID, ActorName: r.ActorName, ActorEmail: r.ActorEmail,
		ResourceType: r.ResourceType, ResourceID: r.ResourceID, ResourceName: r.ResourceName, Changes: r.Changes,
		ContextIP: r.ContextIP, ContextUserAgent: r.ContextUserAgent, ContextRequestID: r.ContextRequestID,
		Properties: r.Properties, ReceivedAtNs: r.ReceivedAtNs, SenderCredentialID: r.SenderCredentialID,
		SenderProducer: r.SenderProducer}
}

// Row returns the stored row a line was made from.
func (l *Line) Row() migrations.Row {
	ts, recv := time.Unix(0, l.TimestampNs).UTC(), time.Unix(0, l.ReceivedAtNs).UTC()
	return migrations.Row{WorkspaceID: l.WorkspaceID, Timestamp: ts.Truncate(time.Second), TimestampNs: l.TimestampNs,
		ID: l.ID, Event: l.Event, Category: l.Category, ActorType: l.ActorType, ActorID: l.ActorID,
		ActorName: l.ActorName, ActorEmail: l.ActorEmail, ResourceType: l.ResourceType, ResourceID: l.ResourceID,
		ResourceName: l.ResourceName, Changes: l.Changes, ContextIP: l.ContextIP, ContextUserAgent: l.ContextUserAgent,
		ContextRequestID: l.ContextRequestID, Properties: l.Properties, ReceivedAt: recv.Truncate(time.Second),
		ReceivedAtNs: l.ReceivedAtNs, SenderCredentialID: l.SenderCredentialID, SenderProducer: l.SenderProducer}
}

// Closing is the last line of an export.
type Closing struct {
	Manifest string `json:"manifest"`
}

// RowRef names one exported row and its leaf.
type RowRef struct {
	ID          string `json:"id"`
	TimestampNs int64  `json:"timestamp_ns"`
	LeafIndex   int64  `json:"leaf_index"`
}

// Range is a leaf-index range [From, To).
type Range struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// StoredHash is one tlog stored hash.
type StoredHash struct {
	Index int64     `json:"i"`
	Hash  tlog.Hash `json:"h"`
}

// Manifest describes one export.
type Manifest struct {
	WorkspaceID string    `json:"workspace_id"`
	CreatedAt   time.Time `json:"created_at"`
	// Query holds the export's parameters as given.
	Query map[string]any `json:"query"`
	// Checkpoint is the signed checkpoint note every row is proven in.
	Checkpoint string `json:"checkpoint"`
	// Range, when set, claims completeness: every leaf index in it is in
	// Rows or in Absent.
	Range *Range   `json:"range,omitempty"`
	Rows  []RowRef `json:"rows"`
	// Absent are the leaf indexes of Range whose event the store no longer
	// holds: removed, or expired by retention. The manifest does not say
	// which (nothing authenticated does), so a verifier reports each.
	Absent []int64 `json:"absent,omitempty"`
	// Unsealed counts the rows matching a query that are not leaves of
	// Checkpoint (sealed after it, or never) and so are not exported.
	Unsealed int `json:"unsealed,omitempty"`
	// Hashes are the stored hashes from which every row's inclusion proof
	// in Checkpoint is rebuilt.
	Hashes []StoredHash `json:"hashes"`
}

// Sign returns the manifest as a note signed by s.
func (m *Manifest) Sign(s note.Signer) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return note.Sign(&note.Note{Text: Header + string(b) + "\n"}, s)
}

// ErrNotManifest is returned by Open for a note whose text is not a
// manifest.
var ErrNotManifest = errors.New("not an export manifest (v1)")

// Open verifies a signed manifest note with the known keys and decodes it.
func Open(msg []byte, known note.Verifiers) (*Manifest, error) {
	n, err := note.Open(msg, known)
	if err != nil {
		return nil, fmt.Errorf("manifest signature: %w", err)
	}
	body, ok := bytes.CutPrefix([]byte(n.Text), []byte(Header))
	if !ok {
		return nil, ErrNotManifest
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotManifest, err)
	}
	return &m, nil
}

// NeededHashes returns the stored-hash indexes from which the inclusion
// proofs of leaves in a tree of size are rebuilt, sorted and distinct.
func NeededHashes(size int64, leaves []int64) ([]int64, error) {
	seen := map[int64]bool{}
	record := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		for _, i := range indexes {
			seen[i] = true
		}
		return make([]tlog.Hash, len(indexes)), nil
	})
	for _, n := range leaves {
		if n < 0 || n >= size {
			return nil, fmt.Errorf("leaf %d is not in a tree of size %d", n, size)
		}
		if _, err := tlog.ProveRecord(size, n, record); err != nil {
			return nil, err
		}
	}
	out := make([]int64, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out, nil
}

// Reader serves the manifest's stored hashes as a tlog.HashReader.
func (m *Manifest) Reader() tlog.HashReader {
	byIndex := make(map[int64]tlog.Hash, len(m.Hashes))
	for _, h := range m.Hashes {
		byIndex[h.Index] = h.Hash
	}
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for k, i := range indexes {
			h, ok := byIndex[i]
			if !ok {
				return nil, fmt.Errorf("the manifest lacks stored hash %d", i)
			}
			out[k] = h
		}
		return out, nil
	})
}
