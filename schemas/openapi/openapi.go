// Package openapi embeds the OpenAPI 3 document of the read API
// (openapi.json).
//
// The API serves it at /openapi.json. A test in query-api/api fails when the
// API's routes and this document disagree.
package openapi

import (
	_ "embed"
)

//go:embed openapi.json
var document []byte

// Document returns the OpenAPI 3 document (JSON). The returned slice must
// not be modified.
func Document() []byte { return document }
