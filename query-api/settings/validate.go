package settings

// Checks of one piece of a setting while the owner writes it: a filter
// condition, a planned event's property schema. They run the rules and the
// compilation of a PUT and store nothing.

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// maxConditionBody bounds a condition's validate request: a condition of
// trackingplan.MaxExprLen characters, each written as a JSON escape of up
// to 12 bytes, fits.
const maxConditionBody = 64 << 10

// Validation is the answer of a validate route: whether the piece would be
// accepted by a PUT, and if not, why (Field names the place inside the
// piece, e.g. "properties/minimum"; "" for the piece as a whole).
type Validation struct {
	Valid   bool   `json:"valid"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message,omitempty"`
}

// conditionRequest is the body of POST .../destination-filters/validate.
type conditionRequest struct {
	If *string `json:"if"`
}

// validateCondition answers whether a filter condition would be accepted
// by PUT .../destination-filters: it compiles, evaluates to a bool, names
// only existing events, uses string-literal regexes and stays within the
// cost bounds of one condition. The condition itself is the answer's
// subject, so a condition that is not accepted is a 200 {"valid": false};
// a body that is not {"if": "..."} is a 400.
func (h *handler) validateCondition(c echo.Context) error {
	ws := c.Param("workspace_id")
	body, err := httpserver.ReadBody(c, maxConditionBody)
	if err != nil {
		return err
	}
	var req conditionRequest
	if err := decodeObject(body, &req); err != nil {
		return err
	}
	if req.If == nil {
		return httpserver.BadRequest("if", "required: the condition to check")
	}
	if utf8.RuneCountInString(*req.If) > trackingplan.MaxExprLen {
		return httpserver.BadRequest("if", "longer than 4096 characters")
	}
	f := trackingplan.Filters{Filters: []trackingplan.Filter{{Name: "condition", Enabled: true, If: *req.If, Action: trackingplan.ActionDrop}}}
	_, err = f.Compile()
	if err == nil {
		err = f.ValidateNew(func(name string) error { return h.o.Events.CheckName(ws, name) })
	}
	return c.JSON(http.StatusOK, validation(err, "filters[0].if"))
}

// schemaRequest is the body of POST .../tracking-plan/validate.
type schemaRequest struct {
	Event      string          `json:"event"`
	Properties json.RawMessage `json:"properties"`
}

// validateSchema answers whether a planned event (its name and property
// schema) would be accepted by PUT .../tracking-plan: the name is an
// event the workspace may plan, and the schema compiles within the cost
// bounds of a plan's schema. The check runs in a plan check's slot, as a
// PUT's does (429 busy otherwise).
func (h *handler) validateSchema(c echo.Context) error {
	ws := c.Param("workspace_id")
	body, err := httpserver.ReadBody(c, MaxBody)
	if err != nil {
		return err
	}
	if err := checkEnvelope(body); err != nil {
		return err
	}
	var req schemaRequest
	if err := decodeObject(body, &req); err != nil {
		// The schema is the answer's subject: a schema breaking the
		// bounds of a settings document (depth, keys, control
		// characters) is not valid, like any other schema a PUT refuses.
		var he *httpserver.Error
		if errors.As(err, &he) && (he.Field == "properties" || strings.HasPrefix(he.Field, "properties.") || strings.HasPrefix(he.Field, "properties[")) {
			return c.JSON(http.StatusOK, Validation{Field: he.Field, Message: he.Message})
		}
		return err
	}
	if strings.TrimSpace(req.Event) == "" {
		return httpserver.BadRequest("event", "required: the planned event's name")
	}
	if utf8.RuneCountInString(req.Event) > 200 {
		return httpserver.BadRequest("event", "longer than 200 characters")
	}
	p := trackingplan.Plan{Events: map[string]trackingplan.PlanEvent{req.Event: {Properties: req.Properties}}}
	var checkErr error
	err = h.checking(c, func() error {
		checkErr = p.ValidateNew(func(name string) error { return h.o.Events.CheckName(ws, name) })
		if checkErr == nil {
			_, checkErr = p.Compile()
		}
		return nil
	})
	if err != nil {
		return err
	}
	v := validation(checkErr, "")
	prefix := "events." + req.Event
	switch {
	case v.Field == prefix:
		v.Field = "event"
	case strings.HasPrefix(v.Field, prefix+"."):
		v.Field = strings.TrimPrefix(v.Field, prefix+".")
	}
	return c.JSON(http.StatusOK, v)
}

// checkEnvelope refuses, with a 400, a schema check whose request itself
// is malformed, before the schema is looked at (a schema's fault answers
// "not valid"): a field other than event and properties, or an event that
// is missing, not a string, blank, over 200 characters or holding a
// control character other than tab and line breaks. A body that is not a
// JSON object is left to decodeObject.
func checkEnvelope(body []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	for k := range top {
		if k != "event" && k != "properties" {
			return httpserver.BadRequest(k, "unknown field: the body holds event and properties")
		}
	}
	raw, ok := top["event"]
	if !ok {
		return httpserver.BadRequest("event", "required: the planned event's name")
	}
	var ev string
	if err := json.Unmarshal(raw, &ev); err != nil {
		return httpserver.BadRequest("event", "must be a string: the planned event's name")
	}
	if strings.TrimSpace(ev) == "" || utf8.RuneCountInString(ev) > 200 {
		return httpserver.BadRequest("event", "a name of 1-200 characters, not only spaces")
	}
	for _, r := range ev {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return httpserver.BadRequest("event", "no control characters but tab and line breaks")
		}
	}
	return nil
}

// validation turns the result of a check into its answer; a field equal to
// own is the piece itself ("").
func validation(err error, own string) Validation {
	if err == nil {
		return Validation{Valid: true}
	}
	var fe *trackingplan.FieldError
	if !errors.As(err, &fe) {
		return Validation{Message: "not accepted"}
	}
	v := Validation{Field: fe.Field, Message: fe.Message}
	if v.Field == own {
		v.Field = ""
	}
	return v
}

// decodeObject decodes a request body that must be one JSON object, with
// the strict rules of a settings document: a 400 naming the field.
func decodeObject(body []byte, v any) error {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return httpserver.BadRequest("", "the body must be a JSON object")
	}
	if err := trackingplan.Decode(body, v); err != nil {
		var fe *trackingplan.FieldError
		if errors.As(err, &fe) {
			return httpserver.BadRequest(fe.Field, fe.Message)
		}
		return httpserver.BadRequest("", "not a valid JSON object")
	}
	return nil
}
