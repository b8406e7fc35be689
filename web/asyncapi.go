package web

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"go.yaml.in/yaml/v3"
)

// asyncAPI is the AsyncAPI 3 document of the Kafka contract: the events,
// table and dead-letter topics and the messages of both CloudEvents content
// modes. e2e/asyncapi_test.go validates it with the AsyncAPI parser and
// keeps its event types and bounds equal to the decoder's.
//
//go:embed asyncapi.yaml
var asyncAPI []byte

// jsonSchemas are the document's component schemas as standalone JSON
// Schema documents, served at /schemas/<name>.json. The document uses YAML
// aliases rather than $ref between schemas, so each one stands alone.
var jsonSchemas = mustJSONSchemas(asyncAPI)

// AsyncAPI returns the AsyncAPI 3 document of the Kafka contract, in YAML.
func AsyncAPI() []byte { return append([]byte(nil), asyncAPI...) }

// JSONSchema returns the served JSON Schema of a component schema of the
// AsyncAPI document (CustomerRegisteredData, Customer, ...).
func JSONSchema(name string) ([]byte, bool) {
	b, ok := jsonSchemas[name]
	return b, ok
}

func mustJSONSchemas(doc []byte) map[string][]byte {
	var d struct {
		Components struct {
			Schemas map[string]any `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		panic(fmt.Sprintf("web: the embedded asyncapi.yaml is not YAML: %v", err)) // a build that cannot ship
	}
	out := make(map[string][]byte, len(d.Components.Schemas))
	for name, s := range d.Components.Schemas {
		m, ok := s.(map[string]any)
		if !ok {
			panic(fmt.Sprintf("web: asyncapi.yaml schema %s is not an object", name))
		}
		doc := map[string]any{"$schema": "https://json-schema.org/draft-07/schema#", "$id": "/schemas/" + name + ".json", "title": name}
		for k, v := range m {
			doc[k] = v
		}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			panic(fmt.Sprintf("web: asyncapi.yaml schema %s has no JSON form: %v", name, err))
		}
		out[name] = append(b, '\n')
	}
	return out
}

// serveAsyncAPI answers GET /asyncapi.yaml.
func serveAsyncAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(asyncAPI) // the client went away; nothing left to tell it
}

// serveJSONSchema answers GET /schemas/{name}: name is a schema's name
// with .json after it.
func serveJSONSchema(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), ".json")
	b, found := JSONSchema(name)
	if !ok || !found {
		writeError(w, http.StatusNotFound, "not_found", "no schema "+r.PathValue("name")+"; see /asyncapi.yaml for the names")
		return
	}
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b) // the client went away; nothing left to tell it
}
