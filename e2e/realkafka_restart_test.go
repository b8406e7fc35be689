package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestRealKafkaBrokerRestart SIGKILLs the only broker mid-ingest and
// starts it again on the same data. The running service must notice
// (/readyz 503), recover by itself once the broker is back (/readyz 200,
// same process) and end with the reference fold of every event produced.
func TestRealKafkaBrokerRestart(t *testing.T) {
	testkit.RequireKafka(t) // the setup that provides Java and the jars
	t.Parallel()
	bin := binBuild(t)
	broker := rkbStartBroker(t)
	names := uniqueKafkaNames("rkb-restart")
	lines := testkit.Generate(37, rkbCustomers, rkbEvents)
	want := testkit.ReferenceFold(t, lines)

	createServeTopics(t, kafkaAdmin(t, broker.addr), names, nil)

	srv := rkbServe(t, bin, broker.addr, names, "instance")
	srv.waitReady(90 * time.Second)
	startedAt := rkbProcessStart(t, srv)

	ingest := rkbStartIngest(t, broker.addr, names.events, lines)
	ingest.waitAcked(t, len(lines)/3, 60*time.Second)

	killedAt := time.Now()
	broker.run("kill")
	t.Logf("broker SIGKILLed after %d of %d events were acknowledged", ingest.acked.Load(), len(lines))
	to503, err := srv.await("/readyz", http.StatusServiceUnavailable, 30*time.Second)
	if err != nil {
		t.Fatalf("with the broker down: %v", err)
	}
	_, body := srv.get("/readyz")
	t.Logf("/readyz 503 %s after the kill: %s", to503.Round(time.Millisecond), body)

	began := time.Now()
	broker.run("start")
	upAt := time.Now()
	t.Logf("broker up again after %s (%s after the kill)", upAt.Sub(began).Round(time.Millisecond),
		upAt.Sub(killedAt).Round(time.Millisecond))
	// Not fatal: whether the events were folded is worth knowing even
	// when readiness did not come back.
	if to200, err := srv.await("/readyz", http.StatusOK, 90*time.Second); err != nil {
		t.Errorf("with the broker back: %v", err)
	} else {
		t.Logf("/readyz 200 %s after the broker was up", to200.Round(time.Millisecond))
	}

	ingest.wait(t, 3*time.Minute)
	t.Logf("ingest of %d events ended %s after the broker was up", len(lines), ingest.ended.Sub(upAt).Round(time.Millisecond))
	began = time.Now()
	srv.client.AwaitFold(t, want, 120*time.Second)
	t.Logf("the reference fold of %d customers is served %s after the broker was up (awaited %s)",
		len(want), time.Since(upAt).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	if srv.exited() {
		t.Fatalf("eventfold serve (pid %d) exited: %v", srv.pid(), srv.waitErr)
	}
	if again := rkbProcessStart(t, srv); again != startedAt {
		t.Errorf("process start time was %v, is %v: the server behind the port is not pid %d", startedAt, again, srv.pid())
	}
	m := binScrape(t, srv.client)
	t.Logf("pid %d served throughout: folded %.0f (reference accepted %d), duplicates %.0f, processor restarts %.0f, view restarts %.0f",
		srv.pid(), m.sum("eventfold_events_folded_total"), binVersionSum(want), m.sum("eventfold_events_duplicate_total"),
		m.sum("eventfold_processor_restarts_total"), m.sum("eventfold_view_restarts_total"))
}

// rkbProcessStart is the start time the server reports in /metrics, which
// tells whether the same process still answers on its port.
func rkbProcessStart(t *testing.T, s *server) float64 {
	t.Helper()
	m := binScrape(t, s.client)
	v, ok := m["process_start_time_seconds"]
	if !ok {
		t.Fatalf("%s: /metrics has no process_start_time_seconds", s.name)
	}
	return v
}

// rkbBroker is a private Apache Kafka broker of one test, run by
// deploy/kafka/kafka.sh with its own home dir and ports, so that killing
// it leaves the shared broker alone.
type rkbBroker struct {
	t    *testing.T
	addr string
	home string
	env  []string
}

// rkbStartBroker starts a broker on free ports; the cleanup stops it and,
// if the test failed, prints the end of its log.
func rkbStartBroker(t *testing.T) *rkbBroker {
	t.Helper()
	home := t.TempDir() // created first, so removed after the broker stopped
	port, controllerPort := binFreePort(t), binFreePort(t)
	b := &rkbBroker{t: t, addr: fmt.Sprintf("127.0.0.1:%d", port), home: home}
	b.env = append(os.Environ(), "KAFKA_HOME_DIR="+home,
		fmt.Sprintf("KAFKA_PORT=%d", port), fmt.Sprintf("KAFKA_CONTROLLER_PORT=%d", controllerPort))
	t.Cleanup(func() {
		if out, err := b.script("stop"); err != nil {
			t.Errorf("failed to stop the broker on %s: %v\n%s", b.addr, err, out)
		}
		if t.Failed() {
			t.Logf("broker on %s, end of server.log:\n%s", b.addr, fileTail(filepath.Join(b.home, "server.log"), 16<<10))
		}
	})
	began := time.Now()
	b.run("start")
	t.Logf("private broker on %s started in %s", b.addr, time.Since(began).Round(time.Millisecond))
	return b
}

// run runs a kafka.sh command and fails the test if it fails.
func (b *rkbBroker) run(command string) {
	b.t.Helper()
	if out, err := b.script(command); err != nil {
		b.t.Fatalf("kafka.sh %s (broker %s) failed: %v\n%s", command, b.addr, err, out)
	}
}

func (b *rkbBroker) script(command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testkit.RepoRoot(b.t), "deploy", "kafka", "kafka.sh"), command)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
