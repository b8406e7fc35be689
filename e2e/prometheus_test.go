package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// promJob is the scrape job of deploy/prometheus/prometheus.yml; the
// alerting rules select it by name.
const promJob = "eventfold"

// TestPromtoolCheckMetrics lints a scrape of the built binary with
// `promtool check metrics`, after the sample was folded so that the
// counters, histograms and per-partition gauges all have series.
func TestPromtoolCheckMetrics(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(100 * time.Second)
	promtool := promTool(t, "promtool")
	bin := binBuild(t)
	srv := binServeReady(t, bin, promLeft(deadline, 60*time.Second))

	accepted := binVersionSum(srv.produceSample(t, bin, promLeft(deadline, 60*time.Second)))
	binAwaitMetrics(t, srv.client, promLeft(deadline, 30*time.Second), func(m binMetrics) []string {
		if got := m.sum("eventfold_events_folded_total"); got != float64(accepted) {
			return []string{fmt.Sprintf("eventfold_events_folded_total sums to %v, want %d", got, accepted)}
		}
		return nil
	})

	status, body := srv.client.Get(t, srv.client.Base+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	// promtool exits non-zero on lint problems (3 in Debian's 2.42) and
	// prints one per line; a clean scrape prints nothing at all.
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("promtool check metrics on a scrape of %d bytes: %v\n%s", len(body), err, out.Bytes())
	}
	t.Logf("promtool check metrics: clean scrape of %d bytes (%d lines)", len(body), bytes.Count(body, []byte("\n")))
}

// TestPrometheusScrapesEventfold runs a real Prometheus with the config
// and rules of deploy/prometheus against the built binary: the target and
// the rules load, the counters and the lag gauge arrive with the values
// the fold implies, a healthy service fires no alert, and one malformed
// record fires EventfoldDeadLetters.
func TestPrometheusScrapesEventfold(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(110 * time.Second)
	prometheus := promTool(t, "prometheus")
	kcat := binKcat(t)
	bin := binBuild(t)
	srv := binServeReady(t, bin, promLeft(deadline, 60*time.Second))
	target := strings.TrimPrefix(srv.client.Base, "http://")

	// Prometheus starts once eventfold is ready, so EventfoldNotReady has
	// nothing to see and every alert must stay silent until the DLQ record.
	config, alerts := promWriteConfig(t, target)
	start := time.Now()
	api := promStart(t, prometheus, config, promLeft(deadline, 30*time.Second))
	t.Logf("prometheus ready in %s", time.Since(start).Round(time.Millisecond))

	want := srv.produceSample(t, bin, promLeft(deadline, 60*time.Second))
	accepted := binVersionSum(want)

	start = time.Now()
	upQuery := fmt.Sprintf(`up{job=%q, instance=%q}`, promJob, target)
	api.await(t, promLeft(deadline, 60*time.Second), []promExpect{
		{query: upQuery, want: 1},
		{query: "sum(eventfold_events_folded_total)", want: float64(accepted)},
		{query: "max(eventfold_processor_lag_records)", want: 0},
		{query: "count(eventfold_processor_lag_records)", want: binPartitions},
		{query: "eventfold_ready", want: 1},
		{query: "sum(eventfold_dlq_records_total)", want: 0},
	})
	t.Logf("prometheus saw %d folded events and zero lag on %d partitions %s after the fold",
		accepted, binPartitions, time.Since(start).Round(time.Millisecond))
	api.awaitRulesHealthy(t, promLeft(deadline, 40*time.Second), alerts)
	if active := api.alerts(t); len(active) != 0 {
		t.Errorf("alerts on a healthy eventfold: %v", active)
	}

	// The key is a customer's, so murmur2 puts the record on the right
	// partition and only its value makes it a dead letter.
	start = time.Now()
	garbage := testkit.Line{Key: binActiveCustomer(t, want), Value: []byte("not a cloudevent {")}
	binKcatProduce(t, kcat, srv.kafkaAddr, []testkit.Line{garbage}, "-X", "partitioner=murmur2_random")
	api.await(t, promLeft(deadline, 30*time.Second), []promExpect{
		{query: fmt.Sprintf(`sum(eventfold_dlq_records_total{reason=%q})`, processor.ReasonMalformed), want: 1},
		{query: "sum(eventfold_dlq_records_total)", want: 1},
		{query: "sum(eventfold_events_folded_total)", want: float64(accepted)},
		{query: "max(eventfold_processor_lag_records)", want: 0},
	})
	// EventfoldDeadLetters has no `for`, so it fires at the first rule
	// evaluation (every 15 s) that sees the counter rise.
	api.awaitAlert(t, promLeft(deadline, 40*time.Second), "EventfoldDeadLetters",
		map[string]string{"job": promJob, "reason": processor.ReasonMalformed, "severity": "warning"})
	t.Logf("EventfoldDeadLetters fired %s after the malformed record", time.Since(start).Round(time.Millisecond))
}

// promLeft is d, or what is left until deadline if that is less, so that
// a test's waits together stay within its budget.
func promLeft(deadline time.Time, d time.Duration) time.Duration {
	return max(min(d, time.Until(deadline)), time.Second)
}

// promTool returns the path of a tool of the Debian package `prometheus`.
// The tests are about that tool, so a missing one fails rather than skips.
func promTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run scripts/install-tools.sh prometheus (%v)", name, err)
	}
	return path
}

// promWriteConfig copies deploy/prometheus/prometheus.yml into a temporary
// directory with its one eventfold target replaced by target, and the rule
// files it names beside it. It returns the config's path and the names of
// the alerts in those rule files.
func promWriteConfig(t *testing.T, target string) (string, []string) {
	t.Helper()
	src := filepath.Join(testkit.RepoRoot(t), "deploy", "prometheus")
	raw, err := os.ReadFile(filepath.Join(src, "prometheus.yml"))
	if err != nil {
		t.Fatalf("failed to read the Prometheus config: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("failed to parse prometheus.yml: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		t.Fatalf("prometheus.yml is not one YAML document")
	}
	root := doc.Content[0]

	targets := promTargets(t, root)
	if len(targets.Content) != 1 {
		t.Fatalf("prometheus.yml: job %s has %d targets, want the one local eventfold", promJob, len(targets.Content))
	}
	targets.Content[0].Value = target

	dir := t.TempDir()
	var alerts []string
	for _, rf := range promSeq(t, promKey(t, root, "rule_files"), "rule_files") {
		if filepath.IsAbs(rf.Value) || strings.ContainsAny(rf.Value, "*?[") {
			t.Fatalf("prometheus.yml: rule file %q is not a plain path relative to the config", rf.Value)
		}
		rules, err := os.ReadFile(filepath.Join(src, rf.Value))
		if err != nil {
			t.Fatalf("failed to read rule file %s: %v", rf.Value, err)
		}
		dst := filepath.Join(dir, rf.Value)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatalf("failed to create %s: %v", filepath.Dir(dst), err)
		}
		if err := os.WriteFile(dst, rules, 0o644); err != nil {
			t.Fatalf("failed to copy rule file %s: %v", rf.Value, err)
		}
		alerts = append(alerts, promAlertNames(t, rf.Value, rules)...)
	}
	if len(alerts) == 0 {
		t.Fatalf("prometheus.yml: its rule files define no alerts")
	}

	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatalf("failed to write the Prometheus config: %v", err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, out, 0o644); err != nil {
		t.Fatalf("failed to write the Prometheus config: %v", err)
	}
	return config, alerts
}

// promTargets returns the targets sequence of the eventfold job's single
// static config.
func promTargets(t *testing.T, root *yaml.Node) *yaml.Node {
	t.Helper()
	var job *yaml.Node
	for _, sc := range promSeq(t, promKey(t, root, "scrape_configs"), "scrape_configs") {
		if promKey(t, sc, "job_name").Value == promJob {
			job = sc
		}
	}
	if job == nil {
		t.Fatalf("prometheus.yml has no scrape job %q", promJob)
	}
	statics := promSeq(t, promKey(t, job, "static_configs"), "static_configs")
	if len(statics) != 1 {
		t.Fatalf("prometheus.yml: job %s has %d static configs, want 1", promJob, len(statics))
	}
	targets := promKey(t, statics[0], "targets")
	promSeq(t, targets, "targets")
	return targets
}

// promKey returns the value of key in a YAML mapping.
func promKey(t *testing.T, m *yaml.Node, key string) *yaml.Node {
	t.Helper()
	if m.Kind != yaml.MappingNode {
		t.Fatalf("YAML line %d: want a mapping holding %q", m.Line, key)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	t.Fatalf("YAML line %d: no key %q", m.Line, key)
	return nil
}

// promSeq returns the items of a YAML sequence.
func promSeq(t *testing.T, n *yaml.Node, what string) []*yaml.Node {
	t.Helper()
	if n.Kind != yaml.SequenceNode {
		t.Fatalf("YAML line %d: %s is not a list", n.Line, what)
	}
	return n.Content
}

// promAlertNames lists the alerting rules of a Prometheus rule file.
func promAlertNames(t *testing.T, name string, raw []byte) []string {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("failed to parse rule file %s: %v", name, err)
	}
	var names []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	return names
}

// promStart runs Prometheus on a free loopback port with its storage in a
// temporary directory and waits until /-/ready answers 200. The cleanup
// asks it to quit (the lifecycle API), kills it if it lingers, and prints
// its log if the test failed.
func promStart(t *testing.T, prometheus, config string, timeout time.Duration) *promAPI {
	t.Helper()
	storage := t.TempDir()
	api := &promAPI{
		base: "http://" + binFreeAddr(t),
		hc:   &http.Client{Timeout: 5 * time.Second},
	}
	cmd := exec.Command(prometheus,
		"--config.file="+config,
		"--storage.tsdb.path="+storage,
		"--web.listen-address="+strings.TrimPrefix(api.base, "http://"),
		"--web.enable-lifecycle",
	)
	proc := startProcess(t, processSpec{name: "prometheus", cmd: cmd, output: &outputBuffer{}, about: api.base, logTail: 32 << 10})
	// Registered after startProcess's cleanup, so run before it: the
	// process is gone by the time that cleanup stops it.
	t.Cleanup(func() { promStop(t, api, proc) })
	if _, err := proc.awaitStatus(api.base+"/-/ready", http.StatusOK, timeout); err != nil {
		t.Fatalf("prometheus not ready: %v", err)
	}
	return api
}

// promStop asks Prometheus to quit and waits 10 s before killing it.
func promStop(t *testing.T, api *promAPI, proc *process) {
	t.Helper()
	resp, err := api.hc.Post(api.base+"/-/quit", "", nil)
	if err == nil {
		resp.Body.Close()
	}
	if proc.exitsWithin(10 * time.Second) {
		return
	}
	t.Errorf("prometheus did not quit within 10 s (quit request: %v); killing it", err)
	proc.kill()
}

// promAPI is a client of one Prometheus server's HTTP API.
type promAPI struct {
	base string
	hc   *http.Client
}

// get calls an API endpoint and decodes the data of a success answer.
func (p *promAPI) get(path string, params url.Values, data any) error {
	u := p.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := p.hc.Get(u)
	if err != nil {
		return fmt.Errorf("failed to call %s: %w", path, err)
	}
	defer resp.Body.Close()
	var answer struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return fmt.Errorf("failed to decode %s (%s): %w", path, resp.Status, err)
	}
	if answer.Status != "success" {
		return fmt.Errorf("%s: %s: %s %s", path, resp.Status, answer.ErrorType, answer.Error)
	}
	if err := json.Unmarshal(answer.Data, data); err != nil {
		return fmt.Errorf("failed to decode the data of %s: %w", path, err)
	}
	return nil
}

// promSample is one series of an instant vector.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // unix time, value as a string
}

// query evaluates an instant query that must return a vector.
func (p *promAPI) query(expr string) ([]promSample, error) {
	var data struct {
		ResultType string       `json:"resultType"`
		Result     []promSample `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: result type %s, want vector", expr, data.ResultType)
	}
	return data.Result, nil
}

// promExpect is an instant query that must give one series of value want.
type promExpect struct {
	query string
	want  float64
}

// check returns a complaint, or "" when the query gives the value.
func (e promExpect) check(p *promAPI) string {
	samples, err := p.query(e.query)
	if err != nil {
		return err.Error()
	}
	if len(samples) != 1 {
		return fmt.Sprintf("%s: %d series %v, want one of value %v", e.query, len(samples), samples, e.want)
	}
	s, ok := samples[0].Value[1].(string)
	if !ok {
		return fmt.Sprintf("%s: value %v is not a string", e.query, samples[0].Value)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Sprintf("%s: value %q: %v", e.query, s, err)
	}
	if v != e.want {
		return fmt.Sprintf("%s = %v, want %v", e.query, v, e.want)
	}
	return ""
}

// await polls the queries until each gives its value, or fails after
// timeout with the complaints of the last round.
func (p *promAPI) await(t *testing.T, timeout time.Duration, expects []promExpect) {
	t.Helper()
	promPoll(t, timeout, func() []string {
		var problems []string
		for _, e := range expects {
			if problem := e.check(p); problem != "" {
				problems = append(problems, problem)
			}
		}
		return problems
	})
}

// awaitRulesHealthy waits until Prometheus has loaded exactly the alerts
// of the rule files and evaluated each of them with health "ok"; a rule
// not evaluated yet is "unknown".
func (p *promAPI) awaitRulesHealthy(t *testing.T, timeout time.Duration, alerts []string) {
	t.Helper()
	want := slices.Sorted(slices.Values(alerts))
	promPoll(t, timeout, func() []string {
		var data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Type      string `json:"type"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := p.get("/api/v1/rules", url.Values{"type": {"alert"}}, &data); err != nil {
			return []string{err.Error()}
		}
		var got, problems []string
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				got = append(got, r.Name)
				if r.Health != "ok" {
					problems = append(problems, fmt.Sprintf("rule %s/%s: health %q %s", g.Name, r.Name, r.Health, r.LastError))
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("loaded alerts %v, want those of the rule files %v", got, want))
		}
		return problems
	})
}

// promAlert is an entry of /api/v1/alerts.
type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (a promAlert) String() string {
	return fmt.Sprintf("%s %s %v", a.Labels["alertname"], a.State, a.Labels)
}

// alerts returns the pending and firing alerts.
func (p *promAPI) alerts(t *testing.T) []promAlert {
	t.Helper()
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	if err := p.get("/api/v1/alerts", nil, &data); err != nil {
		t.Fatal(err)
	}
	return data.Alerts
}

// awaitAlert waits until name fires with exactly the labels want, and
// fails if any other alert is pending or firing meanwhile.
func (p *promAPI) awaitAlert(t *testing.T, timeout time.Duration, name string, want map[string]string) {
	t.Helper()
	want = maps.Clone(want)
	want["alertname"] = name
	promPoll(t, timeout, func() []string {
		active := p.alerts(t)
		for _, a := range active {
			if a.Labels["alertname"] != name {
				t.Fatalf("unexpected alert %s", a)
			}
		}
		if len(active) == 1 && active[0].State == "firing" && maps.Equal(active[0].Labels, want) {
			return nil
		}
		return []string{fmt.Sprintf("alerts %v, want %s firing with labels %v", active, name, want)}
	})
}

// promPoll calls check every 500 ms until it returns no complaint, or
// fails after timeout with the last complaints.
func promPoll(t *testing.T, timeout time.Duration, check func() []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		problems := check()
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s:\n%s", timeout, strings.Join(problems, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
