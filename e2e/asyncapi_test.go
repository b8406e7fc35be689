package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// TestAsyncAPIValidates runs the AsyncAPI project's parser
// (@asyncapi/parser, scripts/install-tools.sh asyncapi) on web/asyncapi.yaml.
func TestAsyncAPIValidates(t *testing.T) {
	t.Parallel()
	root := testkit.RepoRoot(t)
	parser := filepath.Join(root, ".build", "asyncapi")
	if _, err := os.Stat(filepath.Join(parser, "node_modules", "@asyncapi", "parser")); err != nil {
		t.Fatalf("no @asyncapi/parser under .build/asyncapi: run scripts/install-tools.sh asyncapi (%v)", err)
	}
	out, err := exec.Command("node", filepath.Join("testdata", "asyncapi_validate.mjs"), parser, filepath.Join(root, "web", "asyncapi.yaml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid AsyncAPI 3.") {
		t.Fatalf("@asyncapi/parser rejects web/asyncapi.yaml: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(string(out)))
}

// asyncAPIDoc is web/asyncapi.yaml decoded; YAML aliases are expanded.
func asyncAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(web.AsyncAPI(), &doc); err != nil {
		t.Fatalf("web/asyncapi.yaml is not YAML: %v", err)
	}
	return doc
}

// at follows a path of keys through a decoded document.
func at(doc any, path string) any {
	for _, k := range strings.Split(path, "/") {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		doc = m[k]
	}
	return doc
}

// TestAsyncAPIMatchesDecoder fails when the document and the code drift:
// each bound it states must be the decoder's constant, its event types the
// decoder's, and each data schema's fields the Go payload's JSON fields.
// A new bound is one more row.
func TestAsyncAPIMatchesDecoder(t *testing.T) {
	doc := asyncAPIDoc(t)
	bounds := []struct {
		path string
		want int
	}{
		{"info/x-eventfold-limits/max-key-length", processor.MaxKeyLength},
		{"info/x-eventfold-limits/max-event-bytes", processor.MaxEventBytes},
		{"components/schemas/CustomerID/maxLength", processor.MaxKeyLength},
		{"components/messages/RegisteredStructured/bindings/kafka/key/maxLength", processor.MaxKeyLength},
		{"components/messages/RegisteredBinary/headers/properties/ce_subject/maxLength", processor.MaxKeyLength},
		{"info/x-eventfold-limits/max-id-bytes", processor.MaxIDBytes},
		{"info/x-eventfold-limits/max-source-bytes", processor.MaxSourceBytes},
		{"components/messages/RenamedStructured/payload/properties/id/maxLength", processor.MaxIDBytes},
		{"components/messages/RenamedBinary/headers/properties/ce_id/maxLength", processor.MaxIDBytes},
		{"components/messages/ErasedStructured/payload/properties/source/maxLength", processor.MaxSourceBytes},
		{"components/messages/ErasedBinary/headers/properties/ce_source/maxLength", processor.MaxSourceBytes},
	}
	for _, b := range bounds {
		t.Run(b.path, func(t *testing.T) {
			if got := at(doc, b.path); got != b.want {
				t.Errorf("%s = %v, want %d", b.path, got, b.want)
			}
		})
	}
	t.Run("event types", func(t *testing.T) {
		var structured, binary []string
		for name, m := range at(doc, "components/messages").(map[string]any) {
			if typ, ok := at(m, "payload/properties/type/const").(string); ok && strings.HasSuffix(name, "Structured") {
				structured = append(structured, typ)
			}
			if typ, ok := at(m, "headers/properties/ce_type/const").(string); ok && strings.HasSuffix(name, "Binary") {
				binary = append(binary, typ)
			}
		}
		want := append([]string(nil), processor.EventTypes...)
		sort.Strings(want)
		sort.Strings(structured)
		sort.Strings(binary)
		if !reflect.DeepEqual(structured, want) || !reflect.DeepEqual(binary, want) {
			t.Errorf("structured messages %v, binary messages %v; the decoder's types are %v", structured, binary, want)
		}
	})
	payloads := map[string]any{
		"CustomerRegisteredData": processor.RegisteredData{}, "CustomerRenamedData": processor.RenamedData{},
		"CustomerEmailChangedData": processor.EmailChangedData{}, "CustomerAddressChangedData": processor.AddressChangedData{},
		"CustomerSuspendedData": processor.SuspendedData{}, "CustomerReactivatedData": processor.ReactivatedData{},
		"CustomerErasedData": processor.ErasedData{}, "Address": processor.Address{},
	}
	if len(payloads)-1 != len(processor.EventTypes) {
		t.Errorf("%d payload types for %d event types: add the new type's data here", len(payloads)-1, len(processor.EventTypes))
	}
	for name, v := range payloads {
		t.Run(name, func(t *testing.T) {
			var fields, props []string
			rt := reflect.TypeOf(v)
			for i := 0; i < rt.NumField(); i++ {
				fields = append(fields, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
			}
			p, _ := at(doc, "components/schemas/"+name+"/properties").(map[string]any)
			for k := range p {
				props = append(props, k)
			}
			sort.Strings(fields)
			sort.Strings(props)
			if len(fields) != len(props) || (len(fields) > 0 && !reflect.DeepEqual(fields, props)) {
				t.Errorf("schema %s has properties %v, the Go type %s has JSON fields %v", name, props, rt, fields)
			}
		})
	}
}

// TestAsyncAPIAndSchemasServed fetches /asyncapi.yaml and a JSON Schema,
// and validates the binary-mode event's data against it.
func TestAsyncAPIAndSchemasServed(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	get := func(path string) (int, []byte) {
		resp, err := p.client.HTTP.Get(p.client.Base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := get("/asyncapi.yaml"); code != 200 || !bytes.Equal(b, web.AsyncAPI()) {
		t.Errorf("GET /asyncapi.yaml: %d, %d bytes, differs from web/asyncapi.yaml", code, len(b))
	}
	code, b := get("/schemas/CustomerRegisteredData.json")
	var schema map[string]any
	if code != 200 || json.Unmarshal(b, &schema) != nil {
		t.Fatalf("GET /schemas/CustomerRegisteredData.json: %d %s", code, b)
	}
	if req := at(schema, "required"); !reflect.DeepEqual(req, []any{"name", "email"}) {
		t.Errorf("served schema requires %v, want [name email]", req)
	}
	if at(schema, "properties/address/properties/country") == nil {
		t.Error("served schema's address is not expanded: it must stand alone")
	}
	if code, b := get("/schemas/Nope.json"); code != 404 || !strings.Contains(string(b), `"not_found"`) {
		t.Errorf("GET /schemas/Nope.json: %d %s, want a JSON 404", code, b)
	}
}
