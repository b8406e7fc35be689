package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/keys"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// server is one running `eventfold serve` and a client of its HTTP API.
type server struct {
	*process
	client    *testkit.Client
	kafkaAddr string // the broker it folds from: its embedded one, or the one it was given
	embedded  bool   // it runs the broker itself
}

// serveSpec says how to start `eventfold serve`.
type serveSpec struct {
	name      string   // in messages; "eventfold serve" if empty
	args      []string // after "serve", without --http-addr
	httpAddr  string   // a free loopback address if empty
	env       []string // added to binEnv()
	kafkaAddr string
	embedded  bool
	logFile   string // where the output goes; in memory if empty
	about     string // logged with the output when the test failed, after the HTTP address
	logTail   int    // bytes at the end of the output logged when the test failed
}

// startServe starts `eventfold serve` as spec says. The cleanup stops it
// and logs the end of its output if the test failed.
func startServe(t *testing.T, bin string, spec serveSpec) *server {
	t.Helper()
	if spec.name == "" {
		spec.name = "eventfold serve"
	}
	if spec.httpAddr == "" {
		spec.httpAddr = binFreeAddr(t)
	}
	cmd := exec.Command(bin, append(append([]string{"serve"}, spec.args...), "--http-addr", spec.httpAddr)...)
	cmd.Env = append(binEnv(), spec.env...)
	var out processOutput = &outputBuffer{}
	if spec.logFile != "" {
		out = newOutputFile(t, spec.logFile)
	}
	about := "http " + spec.httpAddr
	if spec.about != "" {
		about += ", " + spec.about
	}
	p := startProcess(t, processSpec{name: spec.name, cmd: cmd, output: out, about: about, logTail: spec.logTail})
	return &server{process: p, client: testkit.NewClient("http://" + spec.httpAddr), kafkaAddr: spec.kafkaAddr, embedded: spec.embedded}
}

// realKafkaServeArgs are the arguments of `eventfold serve` on names of a
// real broker, after "serve" and but for --http-addr.
func realKafkaServeArgs(brokers string, names kafkaNames, dataDir string) []string {
	// serve refuses --brokers without a KEK file. Every instance of a
	// deployment needs the same KEK, as in production: an instance whose
	// KEK differs cannot unwrap the keys the others created (it
	// dead-letters their sealed events as key_missing, and refuses to
	// restart). So the KEK is derived from the events topic's name, and
	// each instance keeps its copy beside its data dir.
	kek := filepath.Join(filepath.Dir(dataDir), "kek")
	sum := sha256.Sum256([]byte("eventfold test KEK\x00" + names.events))
	line := "test " + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	if _, err := keys.ParseKEKs([]byte(line)); err != nil {
		panic(fmt.Sprintf("the test's KEK line does not parse: %v", err))
	}
	if err := os.WriteFile(kek, []byte(line), 0o600); err != nil {
		panic(fmt.Sprintf("failed to write a KEK file for the test: %v", err))
	}
	return []string{"--brokers", brokers, "--events-topic", names.events, "--group", names.group,
		"--data-dir", dataDir, "--partitions", fmt.Sprint(realKafkaPartitions), "--kek-file", kek}
}

// get returns the status code and body of a GET of path, or 0 and the
// transport error.
func (s *server) get(path string) (int, string) {
	return httpGet(&http.Client{Timeout: 2 * time.Second}, s.client.Base+path)
}

// await polls path until it answers status and returns how long that
// took, or an error once timeout passed or the process exited.
func (s *server) await(path string, status int, timeout time.Duration) (time.Duration, error) {
	return s.awaitStatus(s.client.Base+path, status, timeout)
}

// waitReady polls /readyz until 200, failing at once if the process exits.
// A server that runs its own broker must also have logged the broker's
// bootstrap address, which clients are told to use.
func (s *server) waitReady(timeout time.Duration) {
	s.t.Helper()
	if _, err := s.await("/readyz", http.StatusOK, timeout); err != nil {
		s.t.Fatal(err)
	}
	if want := "bootstrap=" + s.kafkaAddr; s.embedded && !strings.Contains(s.output.String(), want) {
		s.t.Errorf("serve log has no %q", want)
	}
}

// produceSample produces the sample with `eventfold produce --file` and
// waits until the server serves the sample's reference fold, which it
// returns.
func (s *server) produceSample(t *testing.T, bin string, timeout time.Duration) map[string]processor.Customer {
	t.Helper()
	sample := testkit.SampleFile(t)
	lines := testkit.ReadLines(t, sample)
	want := testkit.ReferenceFold(t, lines)
	out := command{path: bin, args: []string{"produce", "--erasure=off", "--brokers", s.kafkaAddr, "--file", sample}}.succeed(t).output
	if !strings.Contains(out, fmt.Sprintf("produced %d events", len(lines))) {
		t.Fatalf("eventfold produce: %s", out)
	}
	s.client.AwaitFold(t, want, timeout)
	return want
}
