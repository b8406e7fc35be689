package web

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the routes New serves. The e2e
// tests keep it true: every API route is in it and nothing else, and a
// schemathesis run checks live responses against it.
//
//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API, in YAML.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// serveOpenAPI answers GET /openapi.yaml.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPI) // the client went away; nothing left to tell it
}
