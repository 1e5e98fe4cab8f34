package openapi

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/contract.golden from openapi.json")

// golden is the contract's digest: one line per value of the document.
const golden = "testdata/contract.golden"

// TestContractIsUnchanged compares the document, flattened to one line per
// value ("/paths/~1v1~1catalogue/get/responses/200/description = ..."),
// sorted, with testdata/contract.golden. Clients are generated from the
// document and the contract test holds the API to it, so a change to it is
// deliberate: go test ./schemas/openapi -run TestContractIsUnchanged
// -update rewrites the file, and its diff (what the contract gains or
// loses, line by line) is reviewed.
func TestContractIsUnchanged(t *testing.T) {
	var doc any
	require.NoError(t, json.Unmarshal(Document(), &doc))
	var lines []string
	flatten(doc, "", &lines)
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "go test ./schemas/openapi -run TestContractIsUnchanged -update writes it")
	require.Equal(t, string(want), got, "the document changed: if on purpose, rewrite the golden file with -update and review its diff")
}

// flatten appends "pointer = value" for every scalar of v (and "pointer =
// {}" or "[]" for empty containers), the pointer in JSON Pointer form.
func flatten(v any, ptr string, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			*out = append(*out, ptr+" = {}")
		}
		for k, x := range v {
			flatten(x, ptr+"/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k), out)
		}
	case []any:
		if len(v) == 0 {
			*out = append(*out, ptr+" = []")
		}
		for i, x := range v {
			flatten(x, fmt.Sprintf("%s/%d", ptr, i), out)
		}
	default:
		b, _ := json.Marshal(v)
		*out = append(*out, ptr+" = "+string(b))
	}
}
