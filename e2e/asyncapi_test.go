package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/eventfold/eventfold/internal/kafka"
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
		{"info/x-eventfold-limits/max-sealed-bytes", processor.MaxSealedBytes},
		{"components/schemas/SealedValue/maxLength", processor.MaxSealedBytes},
		{"info/x-eventfold-limits/max-data-keys", processor.MaxDataKeys},
		{"components/schemas/Customer/properties/data_keys/maxItems", processor.MaxDataKeys},
		{"components/schemas/PersonalDataInvalidAttribute/maxLength", processor.MaxDecisionMessageBytes},
		{"components/messages/RenamedBinary/headers/properties/ce_personaldatainvalid/maxLength", processor.MaxDecisionMessageBytes},
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

// matches reports whether the document's pattern at path matches s.
func matches(t *testing.T, doc any, path, s string) bool {
	t.Helper()
	pattern, ok := at(doc, path).(string)
	if !ok {
		t.Fatalf("%s is not a pattern", path)
	}
	return regexp.MustCompile(pattern).MatchString(s)
}

// TestAsyncAPIMatchesPersonalData fails when the document's description of
// sealed personal data, the keys topic and the dead-letter reasons drifts
// from the processor's: each row is a value the code produces or accepts
// (or refuses) and what the document must say of it.
func TestAsyncAPIMatchesPersonalData(t *testing.T) {
	doc := asyncAPIDoc(t)
	keyID := "0123456789abcdef"
	sealed := processor.FormatSealed(keyID, bytes.Repeat([]byte{0xfb}, 40))
	patterns := []struct {
		name, path, value string
	}{
		{"a sealed value", "components/schemas/SealedValue/pattern", sealed},
		{"a sealed value with a short key id", "components/schemas/SealedValue/pattern", processor.FormatSealed(keyID[1:], []byte("x"))},
		{"a sealed value with upper-case hex", "components/schemas/SealedValue/pattern", processor.FormatSealed(strings.ToUpper(keyID), []byte("x"))},
		{"a sealed value in standard base64", "components/schemas/SealedValue/pattern", processor.SealedPrefix + keyID + ":a+b/"},
		{"plaintext", "components/schemas/SealedValue/pattern", "Secret Person"},
		{"a data key's record key", "components/messages/DataKey/bindings/kafka/key/pattern", processor.KeyRecordKey("c-1", keyID)},
		{"a record key without key id", "components/messages/DataKey/bindings/kafka/key/pattern", "c-1"},
		{"the erasure marker's key", "components/messages/ErasureMarker/bindings/kafka/key/pattern", "c-1"},
	}
	for _, p := range patterns {
		t.Run(p.name, func(t *testing.T) {
			want := true
			switch p.path {
			case "components/schemas/SealedValue/pattern":
				_, _, err := processor.ParseSealed(p.value)
				want = err == nil && !strings.ContainsAny(p.value, "+/=")
			case "components/messages/DataKey/bindings/kafka/key/pattern":
				want = strings.Contains(p.value, "/")
			}
			if got := matches(t, doc, p.path, p.value); got != want {
				t.Errorf("%s %q: the document's pattern says %v, the processor %v", p.path, p.value, got, want)
			}
		})
	}
	consts := []struct {
		path string
		want any
	}{
		{"components/schemas/PersonalDataAttribute/const", processor.PersonalDataAES},
		{"components/messages/RegisteredStructured/payload/properties/" + processor.PersonalDataAttribute + "/const", processor.PersonalDataAES},
		{"components/messages/RegisteredBinary/headers/properties/ce_" + processor.PersonalDataAttribute + "/const", processor.PersonalDataAES},
		{"components/messages/SuspendedBinary/headers/properties/ce_" + processor.PersonalDataInvalidAttribute + "/minLength", 1},
		{"components/messages/ErasureMarker/payload/properties/erased/const", true},
		{"channels/keys/address", kafka.Topics{Events: at(doc, "channels/events/address").(string)}.Keys()},
		{"channels/keys/bindings/kafka/topicConfiguration/cleanup.policy", []any{"compact"}},
	}
	for _, c := range consts {
		t.Run(c.path, func(t *testing.T) {
			if got := at(doc, c.path); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s = %v, want %v", c.path, got, c.want)
			}
		})
	}
	t.Run("erasure marker", func(t *testing.T) {
		var marker map[string]any
		if err := json.Unmarshal(processor.ErasedMarker, &marker); err != nil {
			t.Fatal(err)
		}
		props, _ := at(doc, "components/messages/ErasureMarker/payload/properties").(map[string]any)
		if len(props) != len(marker) || at(props, "erased") == nil {
			t.Errorf("ErasureMarker properties %v, the processor writes %s", props, processor.ErasedMarker)
		}
	})
	t.Run("dead-letter reasons", func(t *testing.T) {
		var got []string
		for _, r := range at(doc, "components/messages/DeadLetter/headers/properties/eventfold.reason/enum").([]any) {
			got = append(got, r.(string))
		}
		want := append([]string(nil), processor.DeadLetterReasons...)
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DeadLetter reasons %v, processor.DeadLetterReasons %v", got, want)
		}
	})
	// The personal fields of each payload are those whose schema allows a
	// sealed value: a field the processor seals must say so.
	payloads := map[string]any{
		"CustomerRegisteredData": &processor.RegisteredData{Address: &processor.Address{}}, "CustomerRenamedData": &processor.RenamedData{},
		"CustomerEmailChangedData": &processor.EmailChangedData{}, "CustomerAddressChangedData": &processor.AddressChangedData{Address: &processor.Address{}},
		"CustomerSuspendedData": &processor.SuspendedData{}, "CustomerReactivatedData": &processor.ReactivatedData{},
		"CustomerErasedData": &processor.ErasedData{},
	}
	for name, v := range payloads {
		t.Run("personal fields of "+name, func(t *testing.T) {
			var want, got []string
			for _, f := range processor.PersonalFields(v) {
				want = append(want, f.Name)
			}
			got = sealableFields(at(doc, "components/schemas/"+name+"/properties"), "")
			sort.Strings(want)
			sort.Strings(got)
			if len(want) != len(got) || (len(want) > 0 && !reflect.DeepEqual(want, got)) {
				t.Errorf("schema %s allows a sealed value in %v, the processor seals %v", name, got, want)
			}
		})
	}
}

// sealableFields lists the properties (dotted under prefix) whose schema
// has the sealed-value pattern among its choices.
func sealableFields(props any, prefix string) []string {
	var out []string
	m, _ := props.(map[string]any)
	for name, s := range m {
		if sub := at(s, "properties"); sub != nil {
			out = append(out, sealableFields(sub, prefix+name+".")...)
			continue
		}
		choices, _ := at(s, "anyOf").([]any)
		for _, c := range choices {
			if p, _ := at(c, "pattern").(string); strings.HasPrefix(p, "^"+processor.SealedPrefix) {
				out = append(out, prefix+name)
				break
			}
		}
	}
	return out
}
