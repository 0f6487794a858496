package api

import _ "embed"

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the whole HTTP API (served at
// GET /v1/openapi.json). It is written by hand beside this file; the
// server's tests validate every request and response they make against
// it, and check that it and the router have the same routes.
func OpenAPI() []byte { return openAPI }
