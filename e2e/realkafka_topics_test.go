package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestRealKafkaTopicSetup starts the binary on fresh names against real
// Kafka and checks the topics it created: an events log that never
// deletes, a compacted table co-partitioned with it, and a dead-letter
// topic.
func TestRealKafkaTopicSetup(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	names := newKafkaNames(t, brokers, "rka-setup")
	srv := rkaServe(t, binBuild(t), brokers, names, t.TempDir())
	srv.waitReady(60 * time.Second)

	adm := kafkaAdmin(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	details, err := adm.ListTopics(ctx, names.events, names.table(), names.dlq())
	if err != nil {
		t.Fatalf("failed to list topics: %v", err)
	}
	for _, topic := range []string{names.events, names.table(), names.dlq()} {
		d, ok := details[topic]
		switch {
		case !ok:
			t.Errorf("topic %s is not in the metadata", topic)
		case d.Err != nil:
			t.Errorf("topic %s: %v", topic, d.Err) // UNKNOWN_TOPIC_OR_PARTITION if serve did not create it
		case len(d.Partitions) != realKafkaPartitions:
			t.Errorf("topic %s has %d partitions, want %d", topic, len(d.Partitions), realKafkaPartitions)
		}
	}

	want := map[string]map[string]string{
		names.events:  eventsTopicConfigs,
		names.table(): tableTopicConfigs,
		names.dlq():   dlqTopicConfigs,
	}
	for topic, configs := range want {
		got := topicConfigs(t, adm, topic)
		for key, value := range configs {
			if got[key] != value {
				t.Errorf("topic %s: %s=%q, want %q", topic, key, got[key], value)
			}
		}
	}
}

// TestRealKafkaTopicSetupOnFreshNames starts serve on several sets of
// fresh names at once: every start must come up. Real Kafka (KRaft)
// answers CreateTopics before its metadata cache serves the new topic, so
// a describe right after the create can say UNKNOWN_TOPIC_OR_PARTITION or
// report no partitions, and serve must wait for the topic; kfake creates
// topics at once, so the embedded-broker tests cannot see this.
func TestRealKafkaTopicSetupOnFreshNames(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	bin := binBuild(t)
	for i := range 6 {
		t.Run(fmt.Sprintf("start %d", i), func(t *testing.T) {
			t.Parallel()
			names := newKafkaNames(t, brokers, "rka-fresh")
			srv := rkaServe(t, bin, brokers, names, t.TempDir())
			srv.waitReady(60 * time.Second)
		})
	}
}

// TestRealKafkaServeRejectsFiniteRetention pre-creates topics that would
// break the service's guarantees: serve must refuse them, exit non-zero
// and name the offending setting, rather than fold a log that loses events
// or a table that grows forever.
func TestRealKafkaServeRejectsFiniteRetention(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	bin := binBuild(t)
	adm := kafkaAdmin(t, brokers)
	tests := []struct {
		name string
		// Configs of the events and table topics to create before serve
		// starts; nil leaves the topic to serve. Each case creates the
		// topics up to the one that is wrong, so that serve only checks
		// them (TestRealKafkaTopicSetupOnFreshNames covers creation).
		events, table   map[string]string
		tablePartitions int32
		wantInOutput    string
	}{
		{name: "finite retention.ms", events: map[string]string{"retention.ms": "604800000"}, wantInOutput: "retention.ms"},
		{name: "finite retention.bytes", events: map[string]string{"retention.ms": "-1", "retention.bytes": "1073741824"}, wantInOutput: "retention.bytes"},
		{name: "compacted events topic", events: map[string]string{"cleanup.policy": "compact"}, wantInOutput: "cleanup.policy"},
		{name: "table not compacted", events: eventsTopicConfigs, table: map[string]string{"cleanup.policy": "delete"}, wantInOutput: "cleanup.policy"},
		{name: "table partitions differ", events: eventsTopicConfigs, table: map[string]string{"cleanup.policy": "compact"}, tablePartitions: 3, wantInOutput: "partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			names := newKafkaNames(t, brokers, "rka-reject")
			if tt.events != nil {
				createTopic(t, adm, names.events, realKafkaPartitions, tt.events)
			}
			if tt.table != nil {
				partitions := tt.tablePartitions
				if partitions == 0 {
					partitions = realKafkaPartitions
				}
				createTopic(t, adm, names.table(), partitions, tt.table)
			}
			code, out := rkaServeUntilExit(t, bin, brokers, names, 30*time.Second)
			if code == 0 {
				t.Fatalf("serve exited with 0 on a misconfigured topic; output:\n%s", out)
			}
			if !strings.Contains(out, tt.wantInOutput) {
				t.Errorf("serve exited with %d but its output does not mention %q:\n%s", code, tt.wantInOutput, out)
			}
		})
	}
}

// rkaServe starts serve on dataDir; the cleanup stops it with SIGTERM
// (SIGKILL after 15 s) and prints its log if the test failed. Pass a
// t.TempDir() created before the call, so that it outlives the process.
func rkaServe(t *testing.T, bin, brokers string, names kafkaNames, dataDir string) *server {
	t.Helper()
	return startServe(t, bin, serveSpec{args: realKafkaServeArgs(brokers, names, dataDir), kafkaAddr: brokers, logTail: 32 << 10})
}

// rkaServeUntilExit runs serve, which is expected to give up by itself, and
// returns its exit code and output. Still running after timeout fails the
// test.
func rkaServeUntilExit(t *testing.T, bin, brokers string, names kafkaNames, timeout time.Duration) (int, string) {
	t.Helper()
	args := append([]string{"serve"}, realKafkaServeArgs(brokers, names, filepath.Join(t.TempDir(), "data"))...)
	r := command{path: bin, args: append(args, "--http-addr", binFreeAddr(t)), timeout: timeout}.run(t)
	t.Logf("serve exited with %d after %s", r.code, r.took.Round(time.Millisecond))
	return r.code, r.output
}
