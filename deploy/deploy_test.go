// Package deploy_test checks the deployment files against the code and
// against each other, so that neither can drift alone: the Dockerfile
// (and two linters' verdict on it), the Prometheus configuration and
// alerting rules (promtool), the Grafana dashboard, the compose project and
// the Kubernetes manifests. The code's defaults (HTTP port, health routes,
// flags, metric names) are read from its sources, not copied.
//
// External tools: promtool (scripts/install-tools.sh prometheus), and npm
// and python3 for scripts/lint-dockerfile.sh. A missing tool fails the test
// and says how to install it.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is relative to this package's folder, where go test runs.
const repoRoot = ".."

// metricTypes is every metric eventfold exports, by type. The dashboard and
// the rules may use only these; TestMetricNames checks that the code
// registers exactly these.
var metricTypes = map[string]string{
	"eventfold_view_accepted_events":           "gauge",
	"eventfold_processor_committed_offset":     "gauge",
	"eventfold_plaintext_events_total":         "counter",
	"eventfold_data_keys_erased_total":         "counter",
	"eventfold_events_folded_total":            "counter",
	"eventfold_events_rejected_total":          "counter",
	"eventfold_events_duplicate_total":         "counter",
	"eventfold_dlq_records_total":              "counter",
	"eventfold_processor_restarts_total":       "counter",
	"eventfold_processor_rebalances_total":     "counter",
	"eventfold_view_restarts_total":            "counter",
	"eventfold_view_updates_total":             "counter",
	"eventfold_table_writes_total":             "counter",
	"eventfold_http_requests_total":            "counter",
	"eventfold_http_forwarded_total":           "counter",
	"eventfold_partitions_owned":               "gauge",
	"eventfold_partitions_standby":             "gauge",
	"eventfold_standby_lag_records":            "gauge",
	"eventfold_standby_keys":                   "gauge",
	"eventfold_standby_records_total":          "counter",
	"eventfold_http_forward_seconds":           "histogram",
	"eventfold_view_lookups_total":             "counter",
	"eventfold_fold_duration_seconds":          "histogram",
	"eventfold_http_request_duration_seconds":  "histogram",
	"eventfold_processor_lag_records":          "gauge",
	"eventfold_view_lag_records":               "gauge",
	"eventfold_view_recovered":                 "gauge",
	"eventfold_view_keys":                      "gauge",
	"eventfold_ready":                          "gauge",
	"eventfold_watchers":                       "gauge",
	"eventfold_waiters":                        "gauge",
	"eventfold_http_connections":               "gauge",
	"eventfold_http_connections_refused_total": "counter",
	"eventfold_history_reads":                  "gauge",
	"eventfold_ui_dead_letters_replayed_total": "counter",
	"eventfold_view_subscribers":               "gauge",
	"eventfold_build_info":                     "gauge",

	"eventfold_processor_recovered_records_total": "counter",
}

// codeFacts are the defaults the deployment files must agree with.
type codeFacts struct {
	httpPort   string   // from serve.go's --http-addr default
	readyPath  string   // registered in web/server.go
	healthPath string   // registered in web/server.go
	envVars    []string // EVENTFOLD_* twins of serve's flags
	probeURL   *url.URL // healthcheck.go's default --url
}

func readCode(t *testing.T) codeFacts {
	t.Helper()
	serve := readFile(t, repoRoot, "serve.go")
	m := regexp.MustCompile(`"http-addr",\s*":(\d+)"`).FindStringSubmatch(serve)
	if m == nil {
		t.Fatal(`serve.go: no --http-addr default of the form ":<port>"`)
	}
	facts := codeFacts{httpPort: m[1], readyPath: "/readyz", healthPath: "/healthz"}
	server := readFile(t, repoRoot, "web", "server.go")
	for _, route := range []string{facts.readyPath, facts.healthPath, "/metrics"} {
		if !strings.Contains(server, `{"`+route+`",`) {
			t.Fatalf("web/server.go registers no route %s, which the probes and scrapes use", route)
		}
	}
	flagRE := regexp.MustCompile(`fs\.(?:stringVar|intVar|durationVar)\(&[^,]+,\s*"([a-z-]+)"`)
	for _, m := range flagRE.FindAllStringSubmatch(serve, -1) {
		facts.envVars = append(facts.envVars, "EVENTFOLD_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_")))
	}
	if !slices.Contains(facts.envVars, "EVENTFOLD_BROKERS") {
		t.Fatalf("serve.go: found no --brokers flag among %v", facts.envVars)
	}
	// The default --url is built from a default port and the health path,
	// unless EVENTFOLD_HTTP_ADDR names another port.
	hc := readFile(t, repoRoot, "healthcheck.go")
	port := regexp.MustCompile(`port := "(\d+)"`).FindStringSubmatch(hc)
	path := regexp.MustCompile(`"http://127\.0\.0\.1:" \+ port \+ "(/[a-z]+)"`).FindStringSubmatch(hc)
	if port == nil || path == nil {
		t.Fatal("healthcheck.go: no default --url")
	}
	u, err := url.Parse("http://127.0.0.1:" + port[1] + path[1])
	if err != nil {
		t.Fatalf("healthcheck.go: default --url: %v", err)
	}
	facts.probeURL = u
	return facts
}

func TestHealthcheckDefaultMatchesServer(t *testing.T) {
	code := readCode(t)
	// The image's HEALTHCHECK runs `eventfold healthcheck` with no flags.
	if code.probeURL.Port() != code.httpPort || code.probeURL.Path != code.healthPath {
		t.Errorf("healthcheck's default --url %s does not probe port %s, path %s", code.probeURL, code.httpPort, code.healthPath)
	}
}

// ---------------------------------------------------------------- helpers

func readFile(t *testing.T, elem ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(elem...))
	if err != nil {
		t.Fatalf("failed to read: %v", err)
	}
	return string(b)
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, elem ...string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, elem...)))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			t.Fatalf("failed to parse %s: %v", filepath.Join(elem...), err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func yamlDoc(t *testing.T, elem ...string) map[string]any {
	t.Helper()
	docs := yamlDocs(t, elem...)
	if len(docs) != 1 {
		t.Fatalf("%s: want one YAML document, got %d", filepath.Join(elem...), len(docs))
	}
	return docs[0]
}

// get walks maps by string keys and lists by int indexes; nil if absent.
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any { l, _ := v.([]any); return l }

func requireTool(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not on PATH: %s", name, hint)
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func promtool(t *testing.T) string {
	t.Helper()
	return requireTool(t, "promtool", "install it with scripts/install-tools.sh prometheus")
}

// ---------------------------------------------------------------- Dockerfile

type instruction struct {
	cmd  string // upper case
	args string
}

// dockerfile returns the instructions of the Dockerfile, continuation
// lines joined and comments dropped.
func dockerfile(t *testing.T) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	for line := range strings.Lines(readFile(t, repoRoot, "Dockerfile")) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out
}

// stages splits instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

func find(ins []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func jsonArgs(t *testing.T, in instruction) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(in.args), &args); err != nil {
		t.Fatalf("%s %s: want the JSON (exec) form: %v", in.cmd, in.args, err)
	}
	return args
}

// buildCommand is the Dockerfile's build command; the README quotes it.
const buildCommand = `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/eventfold .`

// runtimeUID is the non-root user of the image and of the pods.
const runtimeUID = "65532"

func TestDockerfile(t *testing.T) {
	code := readCode(t)
	st := stages(dockerfile(t))
	if len(st) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(st))
	}
	build, final := st[0], st[len(st)-1]

	// The builder's Go is the go directive's minor version.
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, repoRoot, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if from := build[0].args; !strings.HasPrefix(from, "golang:"+m[1]+"-") && !strings.HasPrefix(from, "golang:"+m[1]+" ") {
		t.Errorf("builder is FROM %s; want golang:%s, the go directive of go.mod", from, m[1])
	}

	// Modules are downloaded before the sources are copied, so that the
	// download layer survives source changes.
	var order []string
	for _, in := range build {
		switch {
		case in.cmd == "COPY" && in.args == "go.mod go.sum ./":
			order = append(order, "copy-mod")
		case in.cmd == "RUN" && in.args == "go mod download":
			order = append(order, "download")
		case in.cmd == "COPY" && in.args == ". .":
			order = append(order, "copy-src")
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			order = append(order, "build")
			if !strings.Contains(in.args, buildCommand) {
				t.Errorf("build step %q does not contain %q (the README's command)", in.args, buildCommand)
			}
		}
	}
	if want := []string{"copy-mod", "download", "copy-src", "build"}; !slices.Equal(order, want) {
		t.Errorf("builder steps %v, want %v", order, want)
	}

	from := strings.Fields(final[0].args)[0]
	if from != "scratch" && !strings.HasPrefix(from, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s; want scratch or distroless static (the binary is static)", from)
	}
	users := find(final, "USER")
	if len(users) == 0 {
		t.Fatal("final stage has no USER: it would run as root")
	}
	if uid, _, _ := strings.Cut(users[len(users)-1].args, ":"); uid != runtimeUID {
		t.Errorf("final USER %s, want %s (non-root, as the k8s securityContext says)", users[len(users)-1].args, runtimeUID)
	}

	exposed := map[string]bool{}
	for _, in := range find(final, "EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			exposed[strings.TrimSuffix(p, "/tcp")] = true
		}
	}
	if !exposed[code.httpPort] {
		t.Errorf("EXPOSE lacks %s, the --http-addr default", code.httpPort)
	}

	hc := find(final, "HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("want one HEALTHCHECK, got %d", len(hc))
	}
	_, cmdArgs, ok := strings.Cut(hc[0].args, "CMD ")
	if !ok || !slices.Equal(jsonArgs(t, instruction{"CMD", cmdArgs}), []string{"/eventfold", "healthcheck"}) {
		t.Errorf("HEALTHCHECK %s; want CMD [\"/eventfold\", \"healthcheck\"] (no curl in the image)", hc[0].args)
	}

	ep, cmd := find(final, "ENTRYPOINT"), find(final, "CMD")
	if len(ep) != 1 || !slices.Equal(jsonArgs(t, ep[0]), []string{"/eventfold"}) {
		t.Errorf("ENTRYPOINT %v, want [\"/eventfold\"]", ep)
	}
	if len(cmd) != 1 {
		t.Fatalf("want one CMD, got %v", cmd)
	}
	dataDir := flagValue(jsonArgs(t, cmd[0]), "--data-dir")
	if dataDir == "" {
		t.Fatalf("CMD %s sets no --data-dir", cmd[0].args)
	}
	var volume, owned bool
	for _, in := range final {
		volume = volume || (in.cmd == "VOLUME" && strings.Contains(in.args, `"`+dataDir+`"`))
		owned = owned || (in.cmd == "COPY" && strings.Contains(in.args, "--chown="+runtimeUID) && strings.HasSuffix(in.args, " "+dataDir))
	}
	if !volume || !owned {
		t.Errorf("the data dir %s must be a VOLUME (%v) created owned by %s (%v)", dataDir, volume, runtimeUID, owned)
	}
}

// checkSelects reports a selector that is empty or selects labels the
// pods do not carry.
func checkSelects(t *testing.T, what string, sel any, podLabels map[string]any) {
	t.Helper()
	m, _ := sel.(map[string]any)
	if len(m) == 0 {
		t.Errorf("%s has no selector", what)
	}
	for k, v := range m {
		if podLabels[k] != v {
			t.Errorf("%s selects %s=%v, which the pods do not carry", what, k, v)
		}
	}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func TestDockerignore(t *testing.T) {
	lines := strings.Fields(readFile(t, repoRoot, ".dockerignore"))
	for _, want := range []string{".git", ".build", "data"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	for _, needed := range []string{"go.mod", "go.sum", "*.go"} {
		if slices.Contains(lines, needed) {
			t.Errorf(".dockerignore excludes %s, which the build needs", needed)
		}
	}
}

// TestDockerfileLint runs dockerfile-utils and hadolint through
// scripts/lint-dockerfile.sh, which installs them into .build/ on first
// use. It then lints broken Dockerfiles, to prove that the linters do find
// things.
func TestDockerfileLint(t *testing.T) {
	requireTool(t, "npm", "install Node.js and npm (Debian: apt-get install npm)")
	requireTool(t, "python3", "install Python 3 (Debian: apt-get install python3 python3-venv)")
	script := filepath.Join("scripts", "lint-dockerfile.sh")
	if out, err := run(t, repoRoot, script, "Dockerfile"); err != nil {
		t.Fatalf("%s Dockerfile: %v\n%s", script, err, out)
	}

	for _, test := range []struct {
		name, dockerfile string
		findings         []string
	}{
		{"syntax", "FROM golang:1.26 AS build\nCOPY --chwon=1 a b\nHEALTHCHECK --interval=abc CMD true\n",
			[]string{"Unknown flag: chwon", "invalid duration abc"}},
		{"practice", "FROM golang\nRUN cd /src && make\nCMD /eventfold serve\n",
			[]string{"DL3006", "DL3003", "DL3025"}},
	} {
		t.Run(test.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "Dockerfile")
			if err := os.WriteFile(bad, []byte(test.dockerfile), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := run(t, repoRoot, script, bad)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("want exit status 1 (findings), got %v\n%s", err, out)
			}
			for _, finding := range test.findings {
				if !strings.Contains(out, finding) {
					t.Errorf("the linters missed %s:\n%s", finding, out)
				}
			}
		})
	}
}

// ---------------------------------------------------------------- Prometheus

func TestPromtool(t *testing.T) {
	tool := promtool(t)
	dir := filepath.Join("prometheus")
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "config", "prometheus-compose.yml"},
		{"check", "rules", "rules.yml"},
		{"test", "rules", "rules_test.yml"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if out, err := run(t, dir, tool, args...); err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestPrometheusScrapeConfigs checks both scrape configs: the eventfold
// job on the code's port, every 5 s, with the rules loaded.
func TestPrometheusScrapeConfigs(t *testing.T) {
	code := readCode(t)
	job := alertJob(t)
	for _, test := range []struct{ file, host string }{
		{"prometheus.yml", "127.0.0.1"},
		{"prometheus-compose.yml", "eventfold"}, // the compose service name
	} {
		t.Run(test.file, func(t *testing.T) {
			cfg := yamlDoc(t, "prometheus", test.file)
			if !slices.Contains(list(get(cfg, "rule_files")), any("rules.yml")) {
				t.Errorf("rule_files %v lacks rules.yml", get(cfg, "rule_files"))
			}
			scrape := get(cfg, "scrape_configs", 0)
			if name := str(get(scrape, "job_name")); name != job {
				t.Errorf("job_name %q; the rules expect job %q", name, job)
			}
			interval := str(get(scrape, "scrape_interval"))
			if interval == "" {
				interval = str(get(cfg, "global", "scrape_interval"))
			}
			if interval != "5s" {
				t.Errorf("scrape_interval %q, want 5s", interval)
			}
			if p := str(get(scrape, "metrics_path")); p != "" && p != "/metrics" {
				t.Errorf("metrics_path %q, want /metrics", p)
			}
			want := test.host + ":" + code.httpPort
			if got := str(get(scrape, "static_configs", 0, "targets", 0)); got != want {
				t.Errorf("target %q, want %q", got, want)
			}
		})
	}
}

// alertJob is the job label the alerting rules expect of eventfold's
// targets, taken from EventfoldDown's up{job="..."}.
func alertJob(t *testing.T) string {
	t.Helper()
	for _, r := range alertRules(t) {
		if m := regexp.MustCompile(`up\{job="([^"]+)"\}`).FindStringSubmatch(str(r["expr"])); m != nil {
			return m[1]
		}
	}
	t.Fatal(`rules.yml: no alert on up{job="..."}`)
	return ""
}

func alertRules(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, g := range list(get(yamlDoc(t, "prometheus", "rules.yml"), "groups")) {
		for _, r := range list(get(g, "rules")) {
			if m, ok := r.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func TestAlertRules(t *testing.T) {
	rules := alertRules(t)
	var names []string
	for _, r := range rules {
		names = append(names, str(r["alert"]))
		if get(r, "labels", "severity") == nil || get(r, "annotations", "summary") == nil || get(r, "annotations", "description") == nil {
			t.Errorf("%s: every alert needs a severity label, a summary and a description", r["alert"])
		}
	}
	for _, want := range []string{"EventfoldDown", "EventfoldNotReady", "EventfoldLagGrowing", "EventfoldDeadLetters",
		"EventfoldFoldErrors", "EventfoldViewBehind", "EventfoldHTTPErrors"} {
		if !slices.Contains(names, want) {
			t.Errorf("rules.yml has no alert %s", want)
		}
	}
	// Every alert is exercised by rules_test.yml.
	tests := readFile(t, "prometheus", "rules_test.yml")
	for _, name := range names {
		if !strings.Contains(tests, "alertname: "+name+"\n") {
			t.Errorf("rules_test.yml does not test %s", name)
		}
	}
	// deploy/README.md's table lists every alert.
	readme := readFile(t, "README.md")
	for _, name := range names {
		if !strings.Contains(readme, "`"+name+"`") {
			t.Errorf("deploy/README.md does not describe %s", name)
		}
	}
}

// ---------------------------------------------------------------- metric names

var metricRE = regexp.MustCompile(`eventfold_[a-z_]+`)

// checkMetricNames reports metric names in expr that eventfold does not
// export, and histograms used without a _bucket, _sum or _count suffix.
func checkMetricNames(t *testing.T, where, expr string) {
	t.Helper()
	for _, tok := range metricRE.FindAllString(expr, -1) {
		name, suffix := tok, ""
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(tok, s); ok && metricTypes[base] == "histogram" {
				name, suffix = base, s
			}
		}
		typ, ok := metricTypes[name]
		switch {
		case !ok:
			t.Errorf("%s: %s is no metric of eventfold (%s)", where, tok, expr)
		case typ == "histogram" && suffix == "":
			t.Errorf("%s: histogram %s needs _bucket, _sum or _count (%s)", where, tok, expr)
		}
	}
}

// TestMetricNames checks that metricTypes is what the code registers: each
// name is a string literal in a non-test Go file, and each such literal is
// listed. A new metric fails here until it is listed (and, if it deserves
// one, given a panel).
func TestMetricNames(t *testing.T) {
	inCode := map[string]bool{}
	literal := regexp.MustCompile(`"(eventfold_[a-z_]+)"`)
	err := filepath.WalkDir(repoRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != repoRoot || d.Name() == "deploy" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
			inCode[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range metricTypes {
		if !inCode[name] {
			t.Errorf("%s is used by the deploy files but registered nowhere in the code", name)
		}
	}
	for name := range inCode {
		if _, ok := metricTypes[name]; !ok {
			t.Errorf("the code registers %s: add it to metricTypes in deploy/deploy_test.go", name)
		}
	}
	for _, r := range alertRules(t) {
		checkMetricNames(t, "rules.yml "+str(r["alert"]), str(r["expr"]))
	}
}

// ---------------------------------------------------------------- Grafana

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource map[string]any           `json:"datasource"`
	GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource map[string]any `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) (dashboard, []panel) {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(readFile(t, "grafana", "eventfold-dashboard.json")), &d); err != nil {
		t.Fatalf("failed to parse the dashboard: %v", err)
	}
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	return d, all
}

func TestDashboard(t *testing.T) {
	d, panels := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("dashboard uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion >= 36", d.UID, d.Title, d.SchemaVersion)
	}
	dsVar := ""
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			dsVar = "${" + v.Name + "}"
		}
	}
	if dsVar == "" {
		t.Fatal("the dashboard has no Prometheus datasource variable")
	}

	ids := map[int]string{}
	var titles []string
	for _, p := range panels {
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d is missing or taken by %q", p.Title, p.ID, prev)
		}
		ids[p.ID] = p.Title
		titles = append(titles, p.Title)
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if uid := str(p.Datasource["uid"]); uid != dsVar {
			t.Errorf("panel %q: datasource %q, want %s", p.Title, uid, dsVar)
		}
		for _, q := range p.Targets {
			if uid := str(q.Datasource["uid"]); uid != dsVar {
				t.Errorf("panel %q query %s: datasource %q, want %s", p.Title, q.RefID, uid, dsVar)
			}
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q query %s: empty expr", p.Title, q.RefID)
			}
			checkMetricNames(t, fmt.Sprintf("panel %q", p.Title), q.Expr)
		}
	}

	// The panels the README promises.
	for _, want := range []string{"folded", "Rejections", "Dead letters", "Processor lag", "View lag",
		"Lookup latency", "status code", "Ready", "Watchers"} {
		if !slices.ContainsFunc(titles, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no panel titled with %q among %q", want, titles)
		}
	}
	// Panels must not overlap: Grafana would move them around.
	for i, a := range panels {
		for _, b := range panels[i+1:] {
			if a.Type != "row" && b.Type != "row" && overlap(a, b) {
				t.Errorf("panels %q and %q overlap", a.Title, b.Title)
			}
		}
	}
}

func overlap(a, b panel) bool {
	ga, gb := a.GridPos, b.GridPos
	return ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H
}

// grafanaVars maps Grafana's built-in variables to durations, and every
// dashboard variable to a regex that matches anything.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h")
var dashVarRE = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// TestDashboardPromQLParses has promtool parse every query. promtool 2.42
// has no command to check an expression, so each becomes a recording rule
// of a rule file that `promtool check rules` parses.
func TestDashboardPromQLParses(t *testing.T) {
	tool := promtool(t)
	_, panels := loadDashboard(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range panels {
		for _, q := range p.Targets {
			expr := dashVarRE.ReplaceAllString(grafanaVars.Replace(q.Expr), ".*")
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel_%d:%s", p.ID, q.RefID), Expr: expr})
		}
	}
	if len(rules) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	file := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(rulesFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, ".", tool, "check", "rules", rulesFile)
	if err != nil {
		t.Fatalf("promtool cannot parse a dashboard query: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("%d rules found", len(rules)); !strings.Contains(out, want) {
		t.Fatalf("promtool did not check all %d queries:\n%s", len(rules), out)
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	ds := yamlDoc(t, "grafana", "provisioning", "datasources", "prometheus.yaml")
	if typ, u := str(get(ds, "datasources", 0, "type")), str(get(ds, "datasources", 0, "url")); typ != "prometheus" || u != "http://prometheus:9090" {
		t.Errorf("datasource %s at %s, want prometheus at http://prometheus:9090 (the compose service)", typ, u)
	}
	compose := yamlDoc(t, "compose.yaml")
	provider := yamlDoc(t, "grafana", "provisioning", "dashboards", "eventfold.yaml")
	dir := str(get(provider, "providers", 0, "options", "path"))
	mounts := bindMounts(t, get(compose, "services", "grafana"))
	if got := mounts["./grafana/eventfold-dashboard.json"]; path.Dir(got) != dir {
		t.Errorf("the dashboard is mounted at %q, outside the provider's path %q", got, dir)
	}
	if got := mounts["./grafana/provisioning"]; got != "/etc/grafana/provisioning" {
		t.Errorf("provisioning is mounted at %q, want /etc/grafana/provisioning", got)
	}
}

// ---------------------------------------------------------------- compose

// bindMounts maps a compose service's host paths (relative to deploy/) to
// their container paths, and checks that each host path exists.
func bindMounts(t *testing.T, svc any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range list(get(svc, "volumes")) {
		parts := strings.Split(str(v), ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue // a named volume
		}
		if _, err := os.Stat(parts[0]); err != nil {
			t.Errorf("compose mounts %s, which does not exist", parts[0])
		}
		out[parts[0]] = parts[1]
	}
	return out
}

// environment reads a compose service's environment, map or list form.
func environment(svc any) map[string]string {
	env := map[string]string{}
	switch e := get(svc, "environment").(type) {
	case map[string]any:
		for k, v := range e {
			env[k] = str(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(str(kv), "=")
			env[k] = v
		}
	}
	return env
}

func TestCompose(t *testing.T) {
	code := readCode(t)
	compose := yamlDoc(t, "compose.yaml")
	services, _ := get(compose, "services").(map[string]any)
	for _, name := range []string{"kafka", "eventfold", "prometheus", "grafana"} {
		if services[name] == nil {
			t.Fatalf("compose.yaml has no service %s", name)
		}
	}
	kafka, ef, prom := services["kafka"], services["eventfold"], services["prometheus"]

	// Kafka: KRaft on one node, the version the test suite runs against,
	// and a listener that the other containers reach as kafka:9092.
	m := regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`).FindStringSubmatch(readFile(t, "kafka", "pom.xml"))
	if m == nil {
		t.Fatal("deploy/kafka/pom.xml has no kafka.version")
	}
	if img := str(get(kafka, "image")); img != "apache/kafka:"+m[1] {
		t.Errorf("kafka image %s, want apache/kafka:%s as deploy/kafka/pom.xml", img, m[1])
	}
	kenv := environment(kafka)
	for _, k := range []string{"KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_LISTENERS"} {
		if kenv[k] == "" {
			t.Errorf("kafka: %s is not set", k)
		}
	}
	env := environment(ef)
	brokers := env["EVENTFOLD_BROKERS"]
	if brokers != "kafka:9092" {
		t.Errorf("eventfold: EVENTFOLD_BROKERS=%q, want kafka:9092", brokers)
	}
	if !strings.Contains(kenv["KAFKA_ADVERTISED_LISTENERS"], "://"+brokers) {
		t.Errorf("kafka advertises %q, not %s which eventfold dials", kenv["KAFKA_ADVERTISED_LISTENERS"], brokers)
	}
	if get(kafka, "healthcheck", "test") == nil || str(get(ef, "depends_on", "kafka", "condition")) != "service_healthy" {
		t.Error("eventfold must wait for a healthy kafka (a kafka healthcheck and depends_on condition service_healthy)")
	}
	for k := range env {
		if !slices.Contains(code.envVars, k) {
			t.Errorf("eventfold: %s is no flag of eventfold serve (%v)", k, code.envVars)
		}
	}

	// eventfold: built from the repository's Dockerfile, its HTTP port
	// published, the image's healthcheck.
	ctx := str(get(ef, "build", "context"))
	if _, err := os.Stat(filepath.Join(ctx, str(get(ef, "build", "dockerfile")))); err != nil || filepath.Clean(ctx) != repoRoot {
		t.Errorf("eventfold is built from %s/%s, want the repository's Dockerfile", ctx, get(ef, "build", "dockerfile"))
	}
	published := false
	for _, p := range list(get(ef, "ports")) {
		parts := strings.Split(str(p), ":")
		published = published || parts[len(parts)-1] == code.httpPort
	}
	if !published {
		t.Errorf("eventfold ports %v do not publish container port %s", get(ef, "ports"), code.httpPort)
	}
	hc := list(get(ef, "healthcheck", "test"))
	if !reflect.DeepEqual(hc, []any{"CMD", "/eventfold", "healthcheck"}) {
		t.Errorf("eventfold healthcheck %v, want [CMD /eventfold healthcheck]", hc)
	}

	// Prometheus: the compose scrape config, with the rules beside it
	// where its rule_files says.
	mounts := bindMounts(t, prom)
	cfg := mounts["./prometheus/prometheus-compose.yml"]
	if cfg == "" || !slices.Contains(list(get(prom, "command")), any("--config.file="+cfg)) {
		t.Errorf("prometheus must load ./prometheus/prometheus-compose.yml (mounted at %q, command %v)", cfg, get(prom, "command"))
	}
	if got, want := mounts["./prometheus/rules.yml"], path.Join(path.Dir(cfg), "rules.yml"); got != want {
		t.Errorf("rules.yml is mounted at %q, want %q beside the config", got, want)
	}
}

// ---------------------------------------------------------------- Kubernetes

func TestKubernetes(t *testing.T) {
	code := readCode(t)
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	byKind := map[string]map[string]any{}
	for _, f := range files {
		for _, doc := range yamlDocs(t, f) {
			kind := str(doc["kind"])
			if kind == "" || str(doc["apiVersion"]) == "" || str(get(doc, "metadata", "name")) == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			if byKind[kind] != nil {
				t.Errorf("%s: a second %s", f, kind)
			}
			byKind[kind] = doc
		}
	}
	for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "ConfigMap", "PrometheusRule"} {
		if byKind[kind] == nil {
			t.Fatalf("deploy/k8s has no %s", kind)
		}
	}
	dep, svc := byKind["Deployment"], byKind["Service"]
	pod := get(dep, "spec", "template")
	podLabels, _ := get(pod, "metadata", "labels").(map[string]any)
	selects := func(what string, sel any) {
		t.Helper()
		checkSelects(t, what, sel, podLabels)
	}
	selects("the Deployment", get(dep, "spec", "selector", "matchLabels"))
	selects("the Service", get(svc, "spec", "selector"))
	selects("the PodDisruptionBudget", get(byKind["PodDisruptionBudget"], "spec", "selector", "matchLabels"))

	// The container: port, probes, resources, data dir, settings.
	var c any
	for _, cc := range list(get(pod, "spec", "containers")) {
		if str(get(cc, "name")) == "eventfold" {
			c = cc
		}
	}
	if c == nil {
		t.Fatal("the Deployment has no container named eventfold")
	}
	ports := map[string]string{}
	for _, p := range list(get(c, "ports")) {
		ports[str(get(p, "name"))] = str(get(p, "containerPort"))
	}
	if ports["http"] != code.httpPort {
		t.Errorf("container port http is %q, want %s (the --http-addr default)", ports["http"], code.httpPort)
	}
	for _, probe := range []struct{ name, path string }{
		{"readinessProbe", code.readyPath}, {"livenessProbe", code.healthPath}, {"startupProbe", code.healthPath},
	} {
		get := func(k string) string { return str(get(c, probe.name, "httpGet", k)) }
		if probe.name == "startupProbe" && get("path") == "" {
			continue // optional
		}
		port := get("port")
		if named, ok := ports[port]; ok {
			port = named
		}
		if get("path") != probe.path || port != code.httpPort {
			t.Errorf("%s: GET %s on port %s, want %s on %s", probe.name, get("path"), port, probe.path, code.httpPort)
		}
	}
	for _, k := range []string{"requests", "limits"} {
		for _, r := range []string{"cpu", "memory"} {
			if get(c, "resources", k, r) == nil {
				t.Errorf("the container has no resources.%s.%s", k, r)
			}
		}
	}
	args := make([]string, 0)
	for _, a := range list(get(c, "args")) {
		args = append(args, str(a))
	}
	dataDir := flagValue(args, "--data-dir")
	var dataVolume string
	for _, m := range list(get(c, "volumeMounts")) {
		if str(get(m, "mountPath")) == dataDir {
			dataVolume = str(get(m, "name"))
		}
	}
	if dataDir == "" || dataVolume == "" {
		t.Errorf("args %v: --data-dir must name a mounted volume", args)
	}
	settings := map[string]string{}
	for _, e := range list(get(c, "env")) {
		settings[str(get(e, "name"))] = str(get(e, "value"))
	}
	for _, from := range list(get(c, "envFrom")) {
		if str(get(from, "configMapRef", "name")) == str(get(byKind["ConfigMap"], "metadata", "name")) {
			for k, v := range get(byKind["ConfigMap"], "data").(map[string]any) {
				settings[k] = str(v)
			}
		}
	}
	if settings["EVENTFOLD_BROKERS"] == "" {
		t.Error("EVENTFOLD_BROKERS is not set: the pods would start the embedded broker")
	}
	for k := range settings {
		if strings.HasPrefix(k, "EVENTFOLD_") && !slices.Contains(code.envVars, k) {
			t.Errorf("%s is no flag of eventfold serve (%v)", k, code.envVars)
		}
	}

	// Non-root, as the image.
	if get(pod, "spec", "securityContext", "runAsNonRoot") != true || str(get(pod, "spec", "securityContext", "runAsUser")) != runtimeUID {
		t.Errorf("pod securityContext %v: want runAsNonRoot and runAsUser %s", get(pod, "spec", "securityContext"), runtimeUID)
	}
	if get(c, "securityContext", "allowPrivilegeEscalation") != false || get(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("container securityContext %v: want no privilege escalation and a read-only root", get(c, "securityContext"))
	}

	// The Service and what scrapes it.
	if sp := get(svc, "spec", "ports", 0); str(get(sp, "name")) != "http" || str(get(sp, "port")) != code.httpPort || str(get(sp, "targetPort")) != "http" {
		t.Errorf("Service port %v: want name http, port %s, targetPort http", sp, code.httpPort)
	}
	// The ServiceMonitor's job label is the Service's name.
	if name, job := str(get(svc, "metadata", "name")), alertJob(t); name != job {
		t.Errorf("Service %q: scraped through the ServiceMonitor its job label is its name, but the rules expect %q", name, job)
	}
	if got := str(get(byKind["PodDisruptionBudget"], "spec", "maxUnavailable")); got != "1" {
		t.Errorf("PodDisruptionBudget maxUnavailable %q, want 1", got)
	}
	sm := byKind["ServiceMonitor"]
	svcLabels, _ := get(svc, "metadata", "labels").(map[string]any)
	for k, v := range get(sm, "spec", "selector", "matchLabels").(map[string]any) {
		if svcLabels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%v, which the Service does not carry", k, v)
		}
	}
	if ep := get(sm, "spec", "endpoints", 0); str(get(ep, "port")) != "http" || str(get(ep, "path")) != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v: want port http, path /metrics", ep)
	}

	// The PrometheusRule carries rules.yml's groups, unchanged.
	want := get(yamlDoc(t, "prometheus", "rules.yml"), "groups")
	if got := get(byKind["PrometheusRule"], "spec", "groups"); !reflect.DeepEqual(got, want) {
		gotJSON, _ := json.MarshalIndent(got, "", " ")
		wantJSON, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("k8s/prometheusrule.yaml spec.groups differ from prometheus/rules.yml groups; copy them over.\n%s", firstDiff(gotJSON, wantJSON))
	}
}

// firstDiff shows where two texts first differ.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-80)
	return fmt.Sprintf("prometheusrule.yaml: ...%s\nrules.yml:           ...%s", clip(a[lo:]), clip(b[lo:]))
}

func clip(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(bytes.ReplaceAll(b, []byte("\n"), []byte(" ")))
}
