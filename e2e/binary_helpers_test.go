package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// binPartitions is the partition count `eventfold serve` creates the
// events topic with by default.
const binPartitions = 6

// Topics of a default `eventfold serve`.
const (
	binEventsTopic = "customer-events"
	binDLQTopic    = "customer-events.dlq"
)

// binBuilt is the binary shared by the tests running at one time. Without
// a TestMain nothing runs after the last test, so the tests count their
// uses and the last one out removes the directory; a later test builds
// again, which the Go build cache makes cheap.
var binBuilt struct {
	mu    sync.Mutex
	users int
	dir   string
	path  string
}

// binBuild builds the eventfold binary once for the tests that use it
// concurrently and returns its path.
func binBuild(t *testing.T) string {
	t.Helper()
	binBuilt.mu.Lock()
	defer binBuilt.mu.Unlock()
	if binBuilt.path == "" {
		dir, err := os.MkdirTemp("", "eventfold-e2e-bin-")
		if err != nil {
			t.Fatalf("failed to create the build directory: %v", err)
		}
		path := filepath.Join(dir, "eventfold")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", path, ".")
		cmd.Dir = testkit.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			t.Fatalf("go build failed after %s: %v\n%s", time.Since(start).Round(time.Millisecond), err, out)
		}
		t.Logf("built eventfold in %s", time.Since(start).Round(time.Millisecond))
		binBuilt.dir, binBuilt.path = dir, path
	}
	binBuilt.users++
	t.Cleanup(func() {
		binBuilt.mu.Lock()
		defer binBuilt.mu.Unlock()
		binBuilt.users--
		if binBuilt.users == 0 {
			os.RemoveAll(binBuilt.dir)
			binBuilt.dir, binBuilt.path = "", ""
		}
	})
	return binBuilt.path
}

// binFreePort returns a loopback port that was free a moment ago. The
// kernel hands out ephemeral ports in turn, so it is not reused at once.
func binFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// binKcat returns kcat's path. kcat is the point of these tests (a
// librdkafka client, not ours), so a missing kcat fails rather than skips.
func binKcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not found: run scripts/install-tools.sh kcat (%v)", err)
	}
	return path
}

// binFreeAddr returns a loopback address whose port was free a moment ago.
func binFreeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", binFreePort(t))
}

// binServeConfig says where a server keeps its data and listens.
type binServeConfig struct {
	dataDir   string
	httpPort  int
	kafkaPort int
}

func binNewServeConfig(t *testing.T) binServeConfig {
	t.Helper()
	return binServeConfig{dataDir: t.TempDir(), httpPort: binFreePort(t), kafkaPort: binFreePort(t)}
}

// binServe starts `eventfold serve` with its embedded broker. The cleanup
// stops it with SIGTERM (SIGKILL after 15 s) and prints its log if the
// test failed. Create cfg.dataDir before calling, so that it is removed
// after the process stopped.
func binServe(t *testing.T, bin string, cfg binServeConfig) *server {
	t.Helper()
	kafkaAddr := fmt.Sprintf("127.0.0.1:%d", cfg.kafkaPort)
	return startServe(t, bin, serveSpec{
		args:      []string{"--data-dir", cfg.dataDir, "--embedded-addr", kafkaAddr},
		httpAddr:  fmt.Sprintf("127.0.0.1:%d", cfg.httpPort),
		kafkaAddr: kafkaAddr,
		embedded:  true,
		about:     "data dir " + cfg.dataDir,
		logTail:   64 << 10,
	})
}

// binServeReady starts `eventfold serve` on a fresh data dir and ports and
// waits until it is ready.
func binServeReady(t *testing.T, bin string, timeout time.Duration) *server {
	t.Helper()
	s := binServe(t, bin, binNewServeConfig(t))
	s.waitReady(timeout)
	return s
}

// binEnv is the environment without EVENTFOLD_* variables, which would
// change the server's defaults behind the test's back.
func binEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EVENTFOLD_") {
			env = append(env, kv)
		}
	}
	return env
}

// binKcatProduce produces lines with kcat as key<TAB>value, in order.
// kcat exits only after every message was delivered or failed, and exits
// non-zero if any failed.
func binKcatProduce(t *testing.T, kcat, broker string, lines []testkit.Line, args ...string) {
	t.Helper()
	base := []string{"-P", "-b", broker, "-t", binEventsTopic, "-K", `\t`}
	out := command{path: kcat, args: append(base, args...), stdin: tsvLines(t, lines)}.succeed(t).output
	if strings.TrimSpace(out) != "" {
		t.Logf("kcat: %s", out)
	}
}

// binMetrics is one scrape of /metrics: series ("name{labels}") to value.
type binMetrics map[string]float64

// binScrape reads /metrics in the Prometheus text format. Our series have
// no spaces in label values, so a line is `series value`.
func binScrape(t *testing.T, c *testkit.Client) binMetrics {
	t.Helper()
	status, body := c.Get(t, c.Base+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	m := binMetrics{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("unexpected metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("failed to read /metrics: %v", err)
	}
	return m
}

// sum adds every series of the metric name, whatever its labels.
func (m binMetrics) sum(name string) float64 {
	total := 0.0
	for series, v := range m {
		if series == name || strings.HasPrefix(series, name+"{") {
			total += v
		}
	}
	return total
}

// get returns the series of name with one label, failing if it is absent:
// our counters expose every label value from the start.
func (m binMetrics) get(t *testing.T, name, label, value string) float64 {
	t.Helper()
	series := fmt.Sprintf("%s{%s=%q}", name, label, value)
	v, ok := m[series]
	if !ok {
		t.Fatalf("/metrics has no series %s", series)
	}
	return v
}

// binAwaitMetrics scrapes until check returns no complaint or timeout
// passes, then fails with the last complaint. Counters may lag the table
// the HTTP reads come from: the last events of a run can be rejections of
// never-registered ids, which change nothing a lookup shows.
func binAwaitMetrics(t *testing.T, c *testkit.Client, timeout time.Duration, check func(binMetrics) []string) binMetrics {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := binScrape(t, c)
		problems := check(m)
		if len(problems) == 0 {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics after %s:\n%s", timeout, strings.Join(problems, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// binTally counts the fold's decisions on lines, folded in order as the
// reference fold does, independently of the service.
type binTally struct {
	accepted   int
	duplicates int
	rejected   map[string]int // by reason
}

func binTallyDecisions(t *testing.T, lines []testkit.Line) binTally {
	t.Helper()
	tally := binTally{rejected: map[string]int{}}
	testkit.FoldDecisions(t, lines, func(d processor.Decision) {
		switch d.Outcome {
		case processor.Accepted:
			tally.accepted++
		case processor.Rejected:
			tally.rejected[d.Reason]++
		case processor.Duplicate:
			tally.duplicates++
		}
	})
	return tally
}

// binVersionSum is the number of accepted events of a fold: a customer's
// version counts its accepted events.
func binVersionSum(states map[string]processor.Customer) int {
	n := 0
	for _, c := range states {
		n += int(c.Version)
	}
	return n
}

// binEvent is a CloudEvent line for subject; data is its JSON data.
func binEvent(id, subject, eventType, at, data string) testkit.Line {
	value := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/eventfold/e2e","type":%q,"time":%q,"subject":%q,"data":%s}`,
		id, eventType, at, subject, data)
	return testkit.Line{Key: subject, Value: []byte(value)}
}

// binFoldOnto folds lines onto a copy of states with the pure fold and
// requires each to be accepted.
func binFoldOnto(t *testing.T, states map[string]processor.Customer, lines []testkit.Line) map[string]processor.Customer {
	t.Helper()
	out := make(map[string]processor.Customer, len(states)+len(lines))
	for id, c := range states {
		out[id] = c
	}
	for _, l := range lines {
		ev, err := processor.Decode(l.Key, l.Value)
		if err != nil {
			t.Fatalf("test event %s: %v", l.Value, err)
		}
		ev.Offset = -1 // unknown: real offsets differ, and Diff ignores them
		next, d := processor.Apply(out[l.Key], ev)
		if d.Outcome != processor.Accepted {
			t.Fatalf("test event %s would not be accepted: %+v", l.Value, d)
		}
		out[l.Key] = next
	}
	return out
}
