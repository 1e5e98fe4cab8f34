package settings

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/jsonlimit"
	"github.com/audittrail/audittrail/schemas/openapi"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// TestDocumentedFilterBoundsAreTheServers holds the OpenAPI document's
// bounds of destination filters to the ones the server enforces.
func TestDocumentedFilterBoundsAreTheServers(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openapi.Document(), &doc))
	type str struct {
		MaxLength int    `json:"maxLength"`
		Pattern   string `json:"pattern"`
		Format    string `json:"format"`
	}
	var filters struct {
		AdditionalProperties *bool `json:"additionalProperties"`
		Properties           struct {
			Filters struct {
				MaxItems int `json:"maxItems"`
				Items    struct {
					OneOf []struct {
						AdditionalProperties *bool `json:"additionalProperties"`
						Properties           struct {
							Name       str                     `json:"name"`
							If         str                     `json:"if"`
							Action     struct{ Enum []string } `json:"action"`
							Properties struct {
								MaxItems int `json:"maxItems"`
								Items    str `json:"items"`
							} `json:"properties"`
						} `json:"properties"`
					} `json:"oneOf"`
				} `json:"items"`
			} `json:"filters"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(doc.Components.Schemas["DestinationFilters"], &filters))
	require.False(t, *filters.AdditionalProperties, "unknown fields are refused")
	require.Equal(t, trackingplan.MaxFilters, filters.Properties.Filters.MaxItems)
	var actions []string
	for _, b := range filters.Properties.Filters.Items.OneOf {
		require.False(t, *b.AdditionalProperties, "unknown fields are refused")
		require.Equal(t, trackingplan.MaxFilterNameLen, b.Properties.Name.MaxLength)
		require.Equal(t, trackingplan.MaxExprLen, b.Properties.If.MaxLength)
		require.Equal(t, "audittrail-condition", b.Properties.If.Format)
		actions = append(actions, b.Properties.Action.Enum...)
		if p := b.Properties.Properties; p.MaxItems > 0 {
			require.Equal(t, trackingplan.MaxFilterProps, p.MaxItems)
			// Segments: no dot and no control character jsonlimit refuses.
			const seg = `[^.\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]`
			require.Equal(t, fmt.Sprintf(`^%s+(\.%s+){0,%d}$`, seg, seg, jsonlimit.MaxDepth-1), p.Items.Pattern)
		}
	}
	require.ElementsMatch(t, []string{trackingplan.ActionDrop, trackingplan.ActionSample, trackingplan.ActionDropProperties, trackingplan.ActionAllowProperties}, actions)
}

// TestChangeKeysFitTheEvent: a filter's longest name (200 characters of
// any width) still names a changed field the audit event accepts, and two
// such names sharing their start stay two fields.
func TestChangeKeysFitTheEvent(t *testing.T) {
	for _, name := range []string{"short", strings.Repeat("0", 200), strings.Repeat("é", 200), strings.Repeat("😀", 200), "a" + strings.Repeat("é", 199)} {
		k := changeKey("filters.", name)
		require.LessOrEqual(t, len(k), event.MaxChangeKey, name)
		require.True(t, utf8.ValidString(k), name)
		require.True(t, strings.HasPrefix(k, "filters."))
	}
	require.Equal(t, "filters.short", changeKey("filters.", "short"))
	// A saved target's name (100 characters of any width) and its key's field.
	wide := strings.Repeat("😀", 100)
	url, key := changeKey("saved_targets.", wide), changeKey("saved_targets.", wide, ".write_key")
	require.LessOrEqual(t, len(key), event.MaxChangeKey)
	require.True(t, utf8.ValidString(key) && strings.HasSuffix(key, ".write_key"), key)
	require.LessOrEqual(t, len(url), event.MaxChangeKey)
	require.NotEqual(t, url, key)
	long := strings.Repeat("x", 199)
	require.NotEqual(t, changeKey("filters.", long+"a"), changeKey("filters.", long+"b"))

	// Saving the longest names records the change.
	f := newFixture(t)
	body := fmt.Sprintf(`{"filters": [{"name": %q, "enabled": true, "if": "true", "action": "drop"}, {"name": %q, "if": "true", "action": "drop"}]}`,
		strings.Repeat("0", 200), strings.Repeat("é", 199)+"a")
	code, resp := f.do(t, "PUT", "/v1/workspaces/ws_1/destination-filters", f.owner, body)
	require.Equal(t, 200, code, "%v", resp)
	require.Len(t, f.rec.events, 1, "the change is recorded (the recorder validates the event)")
}
