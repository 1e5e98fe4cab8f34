package leaf

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/audittrail/audittrail/schemas/migrations"
)

var update = flag.Bool("update", false, "rewrite testdata/v1.json from the current encoding (only for new vectors: version 1 must not change)")

// vector is one golden test vector: a row, its encoding and its hash.
type vector struct {
	Name     string         `json:"name"`
	Row      migrations.Row `json:"row"`
	Encoding string         `json:"encoding_hex"`
	Hash     string         `json:"hash_base64"`
}

func vectorRows() []vector {
	ts := time.Date(2026, 12, 7, 12, 34, 56, 789012345, time.UTC)
	recv := ts.Add(1500 * time.Millisecond)
	full := migrations.Row{
		WorkspaceID: "ws_demo", Timestamp: ts.Truncate(time.Second), TimestampNs: ts.UnixNano(),
		ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Event: "Source Created", Category: "sources",
		ActorType: "user", ActorID: "usr_1", ActorName: "Zoë Ünal", ActorEmail: "zoe@example.com",
		ResourceType: "source", ResourceID: "src_1", ResourceName: "Web \"site\"\n",
		Changes: `{"name":{"old":null,"new":"Web"}}`, ContextIP: "203.0.113.7", ContextUserAgent: "curl/8.5",
		ContextRequestID: "req_1", Properties: `{"plan":"team"}`,
		ReceivedAt: recv.Truncate(time.Second), ReceivedAtNs: recv.UnixNano(),
		SenderCredentialID: "cred_01", SenderProducer: "billing",
	}
	old := time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)
	return []vector{
		{Name: "every field set", Row: full},
		{Name: "empty strings, zero times", Row: migrations.Row{WorkspaceID: "w", ID: "i"}},
		{Name: "before 1970 (negative nanoseconds), no sender", Row: migrations.Row{
			WorkspaceID: "ws", Timestamp: old, TimestampNs: old.UnixNano(), ID: "a", Event: "Token Revoked",
			Changes: "{}", Properties: "{}", ReceivedAt: old, ReceivedAtNs: old.UnixNano(),
		}},
	}
}

// TestGoldenVectors pins version 1: the encodings and hashes of
// testdata/v1.json must come out of Encode and Hash byte for byte.
func TestGoldenVectors(t *testing.T) {
	const path = "testdata/v1.json"
	if *update {
		vs := vectorRows()
		for i := range vs {
			vs[i].Encoding = hex.EncodeToString(Encode(&vs[i].Row))
			h := Hash(&vs[i].Row)
			vs[i].Hash = base64.StdEncoding.EncodeToString(h[:])
		}
		b, err := json.MarshalIndent(vs, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var vs []vector
	require.NoError(t, json.Unmarshal(b, &vs))
	require.Len(t, vs, len(vectorRows()))
	for _, v := range vs {
		require.Equal(t, v.Encoding, hex.EncodeToString(Encode(&v.Row)), v.Name)
		h := Hash(&v.Row)
		require.Equal(t, v.Hash, base64.StdEncoding.EncodeToString(h[:]), v.Name)
		enc, _ := hex.DecodeString(v.Encoding)
		require.Equal(t, tlog.RecordHash(enc), h, v.Name)
	}
}

// TestEncodingFollowsFields decodes the encoding field by field and finds
// each column of Fields, in order, with its row value.
func TestEncodingFollowsFields(t *testing.T) {
	for _, v := range vectorRows() {
		b := Encode(&v.Row)
		require.Equal(t, Version, string(b[:len(Version)]))
		b = b[len(Version):]
		for i, p := range migrations.Events.Pointers(&v.Row, Fields) {
			require.GreaterOrEqual(t, len(b), 4, Fields[i])
			n := binary.BigEndian.Uint32(b)
			require.GreaterOrEqual(t, len(b), 4+int(n), Fields[i])
			value := b[4 : 4+n]
			b = b[4+n:]
			switch p := p.(type) {
			case *string:
				require.Equal(t, *p, string(value), Fields[i])
			case *int64:
				require.EqualValues(t, 8, n, Fields[i])
				require.Equal(t, *p, int64(binary.BigEndian.Uint64(value)), Fields[i])
			default:
				t.Fatalf("field %s: unexpected type %T", Fields[i], p)
			}
		}
		require.Empty(t, b, "bytes after the last field")
	}
}

// TestFieldsCoverEveryStoredColumn fails when the events table gains a
// column: a leaf must cover every stored field, so a new column needs a
// new version of the encoding (a new version line and vectors), never a
// change of version 1.
func TestFieldsCoverEveryStoredColumn(t *testing.T) {
	derived := []string{"timestamp", "received_at"} // truncations of the _ns columns
	var want []string
	for _, c := range migrations.InsertColumns {
		if !slices.Contains(derived, c) {
			want = append(want, c)
		}
	}
	require.ElementsMatch(t, want, Fields)
}

// TestFieldBoundariesAreUnambiguous: moving bytes from one field to the
// next changes the encoding and the hash.
func TestFieldBoundariesAreUnambiguous(t *testing.T) {
	a := migrations.Row{WorkspaceID: "w", ID: "i", ActorID: "ab", ActorName: "c"}
	b := migrations.Row{WorkspaceID: "w", ID: "i", ActorID: "a", ActorName: "bc"}
	require.NotEqual(t, Encode(&a), Encode(&b))
	require.NotEqual(t, Hash(&a), Hash(&b))
	c := a
	c.Timestamp = time.Unix(1000, 0) // derived column: not encoded
	require.Equal(t, Hash(&a), Hash(&c))
	c.TimestampNs = 1
	require.NotEqual(t, Hash(&a), Hash(&c))
}

func BenchmarkHash(b *testing.B) {
	r := vectorRows()[0].Row
	b.ReportAllocs()
	for b.Loop() {
		Hash(&r)
	}
}

// TestHashIsTheRecordHashOfTheEncoding: whatever the row's size (Hash
// encodes rows up to hashBuffer bytes on its stack, larger ones on the
// heap), the hash is tlog's record hash of Encode.
func TestHashIsTheRecordHashOfTheEncoding(t *testing.T) {
	for _, n := range []int{0, 100, hashBuffer - 400, hashBuffer, hashBuffer + 1, 100_000} {
		r := migrations.Row{WorkspaceID: "ws_1", ID: "evt_1", TimestampNs: 1, ReceivedAtNs: 2, Properties: strings.Repeat("p", n)}
		require.Equal(t, tlog.RecordHash(Encode(&r)), Hash(&r), "properties of %d bytes", n)
	}
}
