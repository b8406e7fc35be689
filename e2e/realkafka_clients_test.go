package e2e

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// TestRealKafkaThirdPartyProducers feeds one serve on real Kafka from three
// producers that share no code with eventfold: kcat and confluent-kafka
// (both librdkafka, told to use murmur2_random, the Java partitioner) and
// Kafka's own console producer (the Java client, murmur2 by default). Each
// gets its own customers, so each fold can be checked on its own, and no
// record may land on a partition other than its key's.
func TestRealKafkaThirdPartyProducers(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	kcat := binKcat(t)
	python := venvProgram(t, "python", "Python with confluent-kafka")
	bin := binBuild(t)
	names := newKafkaNames(t, brokers, "rka-clients")
	createServeTopics(t, kafkaAdmin(t, brokers), names, nil)
	srv := rkaServe(t, bin, brokers, names, t.TempDir())
	srv.waitReady(60 * time.Second)

	producers := []struct {
		name    string
		seed    int64
		produce func(t *testing.T, in []byte)
	}{
		{"kcat", 101, func(t *testing.T, in []byte) {
			rkaRun(t, in, kcat, "-P", "-b", brokers, "-t", names.events, "-K", `\t`,
				"-X", "partitioner=murmur2_random", "-X", "enable.idempotence=true")
		}},
		{"confluent-kafka", 102, func(t *testing.T, in []byte) {
			out, _ := rkaRun(t, in, python, filepath.Join("testdata", "produce_confluent.py"), brokers, names.events)
			if got := strings.TrimSpace(out); got != fmt.Sprint(bytes.Count(in, []byte("\n"))) {
				t.Errorf("produce_confluent.py reported %q delivered records, want %d", got, bytes.Count(in, []byte("\n")))
			}
		}},
		{"console-producer", 103, func(t *testing.T, in []byte) {
			_, errs := rkaRun(t, in, filepath.Join(testkit.RepoRoot(t), "deploy", "kafka", "kafka.sh"), "console-producer",
				"--bootstrap-server", brokers, "--topic", names.events,
				"--reader-property", "parse.key=true", "--reader-property", "key.separator=\t")
			// The console producer logs failed sends and still exits 0.
			if strings.Contains(errs, "ERROR") {
				t.Errorf("console producer reported errors:\n%s", errs)
			}
		}},
	}
	var all []testkit.Line
	for _, p := range producers {
		all = append(all, testkit.Generate(p.seed, 200, 2000)...)
	}
	t.Run("producers", func(t *testing.T) {
		for _, p := range producers {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				lines := testkit.Generate(p.seed, 200, 2000)
				start := time.Now()
				p.produce(t, tsvLines(t, lines))
				produced := time.Since(start)
				srv.client.AwaitFold(t, testkit.ReferenceFold(t, lines), 90*time.Second)
				t.Logf("%s: %d events over 200 customers produced in %s, folded like the reference after %s",
					p.name, len(lines), produced.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			})
		}
	})
	if t.Failed() {
		// A producer with the wrong partitioner shows as dead letters.
		m := binScrape(t, srv.client)
		t.Logf("eventfold_dlq_records_total = %v, eventfold_events_folded_total = %v",
			m.sum("eventfold_dlq_records_total"), m.sum("eventfold_events_folded_total"))
		return
	}

	// The fold matching proves the accepted events arrived; the counters
	// prove every record was consumed, and none from a wrong partition.
	tally := binTallyDecisions(t, all)
	binAwaitMetrics(t, srv.client, 30*time.Second, func(m binMetrics) []string {
		var problems []string
		if got := m.sum("eventfold_events_folded_total"); got != float64(tally.accepted) {
			problems = append(problems, fmt.Sprintf("eventfold_events_folded_total = %v, want %d", got, tally.accepted))
		}
		for _, reason := range processor.Reasons {
			if got := m.get(t, "eventfold_events_rejected_total", "reason", reason); got != float64(tally.rejected[reason]) {
				problems = append(problems, fmt.Sprintf("eventfold_events_rejected_total{reason=%q} = %v, want %d", reason, got, tally.rejected[reason]))
			}
		}
		if got := m.sum("eventfold_dlq_records_total"); got != 0 {
			problems = append(problems, fmt.Sprintf("eventfold_dlq_records_total = %v, want 0: a producer put records on a partition other than murmur2's", got))
		}
		return problems
	})
}

// rkaRun runs a producer to completion within a minute, with in as its
// stdin, and returns its stdout and stderr apart (produce_confluent.py
// reports its count on stdout); a non-zero exit fails the test.
func rkaRun(t *testing.T, in []byte, name string, args ...string) (string, string) {
	t.Helper()
	r := command{path: name, args: args, stdin: in}.succeed(t)
	if s := strings.TrimSpace(r.stderr); s != "" {
		t.Logf("%s stderr: %s", filepath.Base(name), s)
	}
	return r.stdout, r.stderr
}
