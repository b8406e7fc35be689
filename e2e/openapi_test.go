package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/web"
)

// oaAPIPrefixes are the paths of the API. Every server route at or under
// one of them must be in web/openapi.yaml; any other route is a page
// (Deps.Pages: the web page, its assets) and must not be.
var oaAPIPrefixes = []string{"/customers", "/watch", "/healthz", "/readyz", "/metrics", "/openapi.yaml", "/asyncapi.yaml", "/schemas", "/cluster"}

// oaMethods are the keys of an OpenAPI path item that name operations.
var oaMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// oaDocument is the part of an OpenAPI document the route check reads.
type oaDocument struct {
	OpenAPI string                          `yaml:"openapi"`
	Paths   map[string]map[string]yaml.Node `yaml:"paths"`
}

// oaOperation is the part of an operation the completeness check reads.
type oaOperation struct {
	OperationID string               `yaml:"operationId"`
	Parameters  []map[string]any     `yaml:"parameters"`
	Responses   map[string]yaml.Node `yaml:"responses"`
}

func oaRead(t *testing.T) []byte {
	t.Helper()
	spec, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "web", "openapi.yaml"))
	if err != nil {
		t.Fatalf("failed to read the OpenAPI document: %v", err)
	}
	return spec
}

func oaParse(t *testing.T, spec []byte) oaDocument {
	t.Helper()
	var doc oaDocument
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		t.Fatalf("web/openapi.yaml is not valid YAML: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("web/openapi.yaml declares openapi %q, want 3.x", doc.OpenAPI)
	}
	return doc
}

// oaIsAPI reports whether a server route pattern belongs to the API.
func oaIsAPI(pattern string) bool {
	for _, p := range oaAPIPrefixes {
		if pattern == p || strings.HasPrefix(pattern, p+"/") {
			return true
		}
	}
	return false
}

// oaServerOperations lists "METHOD path" for every API route of the server. A
// ServeMux wildcard {name} is an OpenAPI path parameter as it is; HEAD,
// which the server answers wherever it answers GET, is left out as
// OpenAPI documents usually do.
func oaServerOperations(t *testing.T, routes []web.Route) []string {
	t.Helper()
	var out []string
	for _, r := range routes {
		if !oaIsAPI(r.Pattern) {
			continue
		}
		if strings.Contains(r.Pattern, "...}") || strings.HasSuffix(r.Pattern, "/") {
			t.Errorf("API route %s matches a subtree, which OpenAPI cannot describe", r.Pattern)
		}
		for _, m := range r.Methods {
			out = append(out, m+" "+r.Pattern)
		}
	}
	sort.Strings(out)
	return out
}

func oaSpecOperations(doc oaDocument) []string {
	var out []string
	for path, item := range doc.Paths {
		for key := range item {
			if oaMethods[key] {
				out = append(out, strings.ToUpper(key)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

func oaDiff(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

func TestOpenAPIRoutesMatchServer(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	doc := oaParse(t, oaRead(t))
	server, spec := oaServerOperations(t, p.routes), oaSpecOperations(doc)
	if len(server) == 0 {
		t.Fatal("the server lists no API routes")
	}
	for _, op := range oaDiff(server, spec) {
		t.Errorf("the server serves %s, which web/openapi.yaml does not describe", op)
	}
	for _, op := range oaDiff(spec, server) {
		t.Errorf("web/openapi.yaml describes %s, which the server does not serve", op)
	}
	for path := range doc.Paths {
		if !oaIsAPI(path) {
			t.Errorf("web/openapi.yaml path %s is outside the API prefixes %v", path, oaAPIPrefixes)
		}
	}
}

// TestOpenAPIOperationsAreComplete checks what a reader relies on: every
// operation is named, answers with declared statuses, and declares every
// path parameter its path has.
func TestOpenAPIOperationsAreComplete(t *testing.T) {
	t.Parallel()
	spec := oaRead(t)
	doc := oaParse(t, spec)
	var all map[string]any
	if err := yaml.Unmarshal(spec, &all); err != nil {
		t.Fatal(err)
	}
	wildcard := regexp.MustCompile(`\{([^}]+)\}`)
	ids := map[string]string{}
	for path, item := range doc.Paths {
		for method, node := range item {
			if !oaMethods[method] {
				continue
			}
			name := strings.ToUpper(method) + " " + path
			var op oaOperation
			if err := node.Decode(&op); err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", name)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %s", name, other, op.OperationID)
			}
			ids[op.OperationID] = name
			if len(op.Responses) == 0 {
				t.Errorf("%s declares no responses", name)
			}
			for status := range op.Responses {
				if !regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(status) {
					t.Errorf("%s declares response %q; every status is explicit, no default or ranges", name, status)
				}
			}
			declared := map[string]bool{}
			for _, param := range op.Parameters {
				param = oaResolve(t, all, param)
				if param["in"] == "path" {
					declared[param["name"].(string)] = true
				}
			}
			for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s does not declare its path parameter %s", name, m[1])
				}
			}
		}
	}
}

// oaResolve follows a local $ref such as #/components/parameters/Limit.
func oaResolve(t *testing.T, doc map[string]any, node map[string]any) map[string]any {
	t.Helper()
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("$ref %s does not resolve", ref)
		}
		cur = m[part]
	}
	out, ok := cur.(map[string]any)
	if !ok {
		t.Fatalf("$ref %s does not resolve to an object", ref)
	}
	return out
}

func TestOpenAPIServedAtOpenAPIYAML(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	resp, err := p.client.HTTP.Get(p.client.Base + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type %q, want application/yaml", ct)
	}
	if !bytes.Equal(body, oaRead(t)) {
		t.Error("GET /openapi.yaml differs from web/openapi.yaml")
	}
	if !bytes.Equal(body, web.OpenAPI()) {
		t.Error("GET /openapi.yaml differs from web.OpenAPI()")
	}
}

// TestSchemathesisFindsNoServerErrors runs schemathesis against the whole
// service with the sample data folded: generated and mutated requests to
// every operation, each response checked against web/openapi.yaml for its
// status, content type, headers and body, and invalid input checked to be
// rejected. e2e/testdata/schemathesis.toml says which operations differ.
func TestSchemathesisFindsNoServerErrors(t *testing.T) {
	t.Parallel()
	bin := venvProgram(t, "schemathesis", "schemathesis")
	// A short maximum wait keeps reads whose min_version is never
	// reached from eating the time budget.
	p := startPipeline(t, func(c *web.Config) { c.MaxWait = time.Second })
	p.produceAndAwaitFold(t, testkit.ReadLines(t, testkit.SampleFile(t)), 30*time.Second)

	root := testkit.RepoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--config-file", filepath.Join(root, "e2e", "testdata", "schemathesis.toml"),
		"--no-color",
		"run", p.client.Base+"/openapi.yaml",
		"--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method",
		"--phases", "examples,coverage,fuzzing",
		"--max-examples", "60",
		"--seed", "20260101",
		"--request-timeout", "5",
		"--generation-database", "none",
	)
	cmd.Dir = t.TempDir() // whatever schemathesis leaves in its working directory stays out of the repository
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("schemathesis ran for %s", time.Since(start).Round(time.Second))
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("schemathesis did not finish within 2 minutes:\n%s", out.String())
	case errors.As(err, &exit):
		t.Fatalf("schemathesis found problems (exit %d):\n%s", exit.ExitCode(), out.String())
	case err != nil:
		t.Fatalf("failed to run schemathesis: %v\n%s", err, out.String())
	}
	t.Logf("schemathesis output:\n%s", out.String())
}
