package ingest

import (
	"bytes"
	stdjson "encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
)

// The reference is splitBody as it was before it decoded the body once:
// a lenient decode, a strict one, then encoding/json's tokenizer for a
// repeated "batch". splitBody must answer every body as it did.
// splitBody returns the raw events of a request: the body itself, or the
// elements of {"batch": [...]}.
func referenceSplitBody(body []byte) ([]json.RawMessage, bool, *httpserver.Error) {
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" || trimmed[0] != '{' {
		return nil, false, httpserver.BadRequest("", `the body must be one event object or {"batch": [events]}`)
	}
	var probe struct {
		Batch *[]json.RawMessage `json:"batch"`
	}
	if _, err := json.Parse(body, &probe, json.DontMatchCaseInsensitiveStructFields); err != nil || probe.Batch == nil {
		// Not a batch (or not JSON): treat it as one event and let the event
		// decoder report what is wrong with it.
		return []json.RawMessage{body}, false, nil
	}
	var strict struct {
		Batch []json.RawMessage `json:"batch"`
	}
	rest, err := json.Parse(body, &strict, json.DisallowUnknownFields|json.DontMatchCaseInsensitiveStructFields)
	if err != nil {
		return nil, true, httpserver.BadRequest("batch", `a batch body holds only "batch": an array of event objects`)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, true, httpserver.BadRequest("", "unexpected data after the batch object")
	}
	if referenceRepeatedBatchKey(body) {
		return nil, true, httpserver.BadRequest("batch", `duplicate key: a batch body holds "batch" once`)
	}
	switch n := len(strict.Batch); {
	case n == 0:
		return nil, true, httpserver.BadRequest("batch", "the batch is empty")
	case n > MaxBatch:
		return nil, true, &httpserver.Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: "batch",
			Message: fmt.Sprintf("a batch holds at most %d events, got %d", MaxBatch, n)}
	}
	return strict.Batch, true, nil
}

// repeatedBatchKey reports whether a batch body that the strict decoder
// took (so its only key is "batch") holds "batch" more than once: the
// decoder keeps the last, and a second "batch" must not hide the first.
// Each event is checked for repeated keys on its own (event.Decode).
func referenceRepeatedBatchKey(body []byte) bool {
	dec := stdjson.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // '{'
		return false
	}
	for n := 0; dec.More(); n++ {
		if n == 1 {
			return true
		}
		var skip stdjson.RawMessage
		if _, err := dec.Token(); err != nil || dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}

func requireSameSplit(t *testing.T, body []byte) {
	wantRaws, wantBatch, wantErr := referenceSplitBody(body)
	raws, batch, apiErr := splitBody(body)
	require.Equal(t, wantBatch, batch, "batch")
	require.Equal(t, wantErr, apiErr)
	require.Equal(t, len(wantRaws), len(raws))
	for i := range raws {
		require.Equal(t, string(wantRaws[i]), string(raws[i]), i)
	}
}

func TestSplitBodyAnswersAsBefore(t *testing.T) {
	e := `{"workspace_id": "ws_1", "event": "Source Created", "properties": {"a": "x:{[\"}"}}`
	bodies := []string{
		`{"batch": [` + e + `]}`,
		`{"batch": [` + e + `, ` + e + `]}`,
		`  {"batch":[` + e + `]}  `,
		`{"batch": [` + e + `], "batch": [` + e + `]}`,
		`{"batch": [], "batch": [` + e + `]}`,
		`{"batch": [{"k": "\"batch\": [1]"}], "b\u0061tch": []}`,
		`{"batch": [` + e + `], "x": 1}`,
		`{"batch": [` + e + `]} trailing`,
		`{"batch": [` + e + `]}{}`,
		`{"batch": []}`,
		`{"batch": null}`,
		`{"batch": [1], "batch": null}`,
		`{"batch": 5}`,
		`{"Batch": [` + e + `]}`,
		`{"b\u0061tch": [` + e + `]}`,
		`{"batch": [` + e + `]`,
		`{}`,
		e,
		``,
		`   `,
		`[` + e + `]`,
		`{"batch": [` + strings.Repeat(e+",", MaxBatch) + e + `]}`,
		`{"batch": [{"\\": "\\\\"}, "a\\\"b:", {"x": [{"y": ":"}]}]}`,
	}
	for i, b := range bodies {
		t.Run(fmt.Sprint(i), func(t *testing.T) { requireSameSplit(t, []byte(b)) })
	}
	_, _, apiErr := splitBody([]byte(`{"batch": [{}], "batch": [{}]}`))
	require.Equal(t, http.StatusBadRequest, apiErr.Status)
	require.Contains(t, apiErr.Message, "duplicate key")
}

func FuzzSplitBodyAnswersAsBefore(f *testing.F) {
	for _, s := range []string{`{"batch": [{}]}`, `{"batch": [{"a": "}"}], "batch": []}`, `{"batch": [1], "x": {}}`, `{"a": 1}`, `{"batch": [] } x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { requireSameSplit(t, body) })
}
