package settings

import (
	"slices"
	"strconv"
	"strings"

	"github.com/segmentio/encoding/json"

	"github.com/audittrail/audittrail/schemas/jsonlimit"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// nullField returns the place of the first null in a settings document of
// kind where the document has no null ("" when there is none), e.g.
// "on_violation" or "filters[0].percent". A null there would read as the
// field's default and reset it without a word, so it is refused. Nulls
// stay allowed where they mean something: inside a planned event's JSON
// Schema (events.NAME.properties, where a schema may name null) and as the
// whole schema (no schema), and as alerts' webhook_url (which removes the
// URL). A document that is not JSON or breaks the bounds of jsonlimit is
// left to the decoder, which reports it.
func nullField(kind string, body []byte) string {
	if jsonlimit.Check(body) != nil {
		return ""
	}
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return ""
	}
	return findNull(kind, nil, doc)
}

func findNull(kind string, path []string, v any) string {
	switch v := v.(type) {
	case nil:
		if len(path) > 0 && !nullAllowed(kind, path) {
			return joinPath(path)
		}
	case map[string]any:
		if kind == trackingplan.KindPlan && len(path) == 2 && path[0] == "events" {
			return "" // inside a planned event: only its JSON Schema, checked as a schema
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if f := findNull(kind, append(path, k), v[k]); f != "" {
				return f
			}
		}
	case []any:
		for i, x := range v {
			if f := findNull(kind, append(path, "["+strconv.Itoa(i)+"]"), x); f != "" {
				return f
			}
		}
	}
	return ""
}

func nullAllowed(kind string, path []string) bool {
	return kind == trackingplan.KindAlerts && len(path) == 1 && path[0] == "webhook_url"
}

// joinPath writes a path as the API's field names do: keys joined with
// ".", array indexes appended as "[i]".
func joinPath(path []string) string {
	s := ""
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") { // a key may be ""
			s += "."
		}
		s += p
	}
	return s
}
