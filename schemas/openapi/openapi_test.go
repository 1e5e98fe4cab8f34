package openapi

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocumentIsOpenAPI3 checks the document's shape: an OpenAPI 3 object
// whose references all resolve.
func TestDocumentIsOpenAPI3(t *testing.T) {
	var doc map[string]any
	require.NoError(t, json.Unmarshal(Document(), &doc))
	require.Regexp(t, `^3\.`, doc["openapi"])
	require.NotEmpty(t, doc["info"].(map[string]any)["title"])
	require.NotEmpty(t, doc["paths"])

	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				require.True(t, resolves(doc, r), "unresolved $ref %s", r)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

func resolves(doc map[string]any, ref string) bool {
	const prefix = "#/components/"
	if len(ref) <= len(prefix) || ref[:len(prefix)] != prefix {
		return false
	}
	var cur any = doc["components"]
	start := len(prefix)
	for i := start; i <= len(ref); i++ {
		if i == len(ref) || ref[i] == '/' {
			m, ok := cur.(map[string]any)
			if !ok {
				return false
			}
			if cur, ok = m[ref[start:i]]; !ok {
				return false
			}
			start = i + 1
		}
	}
	return true
}
