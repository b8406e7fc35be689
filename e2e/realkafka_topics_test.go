package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testkit"
)

// rkaPartitions is the partition count the real-Kafka tests give serve.
const rkaPartitions = 6

// TestRealKafkaTopicSetup starts the binary on fresh names against real
// Kafka and checks the topics it created: an events log that never
// deletes, a compacted table co-partitioned with it, and a dead-letter
// topic.
func TestRealKafkaTopicSetup(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	names := rkaNewNames(t, brokers, "rka-setup")
	srv := rkaServe(t, binBuild(t), brokers, names, t.TempDir())
	srv.waitReady(60 * time.Second)

	adm := rkaAdmin(t, brokers)
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
		case len(d.Partitions) != rkaPartitions:
			t.Errorf("topic %s has %d partitions, want %d", topic, len(d.Partitions), rkaPartitions)
		}
	}

	want := map[string]map[string]string{
		names.events:  rkaEventsConfigs,
		names.table(): {"cleanup.policy": "compact"},
		names.dlq():   {"retention.ms": "-1", "cleanup.policy": "delete"},
	}
	for topic, configs := range want {
		got := rkaTopicConfigs(t, adm, topic)
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
			names := rkaNewNames(t, brokers, "rka-fresh")
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
	adm := rkaAdmin(t, brokers)
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
		{name: "table not compacted", events: rkaEventsConfigs, table: map[string]string{"cleanup.policy": "delete"}, wantInOutput: "cleanup.policy"},
		{name: "table partitions differ", events: rkaEventsConfigs, table: map[string]string{"cleanup.policy": "compact"}, tablePartitions: 3, wantInOutput: "partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			names := rkaNewNames(t, brokers, "rka-reject")
			if tt.events != nil {
				rkaCreateTopic(t, adm, names.events, rkaPartitions, tt.events)
			}
			if tt.table != nil {
				partitions := tt.tablePartitions
				if partitions == 0 {
					partitions = rkaPartitions
				}
				rkaCreateTopic(t, adm, names.table(), partitions, tt.table)
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

// rkaNames are the topic and group names of one test on the shared broker.
type rkaNames struct {
	events, group string
}

func (n rkaNames) table() string { return n.group + "-table" }
func (n rkaNames) dlq() string   { return n.events + ".dlq" }

// rkaNewNames returns fresh names: the broker is persistent and shared with
// other tests. The cleanup deletes the topics and the group, unless the
// test failed, when they are kept for a look and their names logged.
func rkaNewNames(t *testing.T, brokers, prefix string) rkaNames {
	t.Helper()
	n := rkaNames{events: testkit.UniqueName(prefix + "-events"), group: testkit.UniqueName(prefix + "-group")}
	adm := rkaAdmin(t, brokers)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept topics %s, %s, %s and group %s", n.events, n.table(), n.dlq(), n.group)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		// Best effort, and a topic serve never created is no error.
		deleted, err := adm.DeleteTopics(ctx, n.events, n.table(), n.dlq())
		if err != nil {
			t.Logf("failed to delete topics of %s: %v", n.group, err)
		}
		for _, r := range deleted.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				t.Logf("failed to delete topic %s: %v", r.Topic, r.Err)
			}
		}
		groups, err := adm.DeleteGroups(ctx, n.group)
		if err == nil {
			err = groups.Error()
		}
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			t.Logf("failed to delete group %s: %v", n.group, err)
		}
	})
	return n
}

// rkaAdmin returns an admin client of the broker, closed by the cleanup.
func rkaAdmin(t *testing.T, brokers string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatalf("failed to create kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// rkaCreateTopic creates a topic with replication factor 1 (the broker is
// a single node) and the given configs, and waits until the broker serves
// its metadata and configs: KRaft answers CreateTopics once the controller
// committed the topic, before the broker's metadata cache knows it.
func rkaCreateTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries := make(map[string]*string, len(configs))
	for k, v := range configs {
		entries[k] = kadm.StringPtr(v)
	}
	if _, err := adm.CreateTopic(ctx, partitions, 1, entries, topic); err != nil {
		t.Fatalf("failed to create topic %s with %v: %v", topic, configs, err)
	}
	for {
		// Short attempts: kgo retries a request internally for seconds
		// when a metadata answer looks stale (another test deleting
		// topics is enough), and asking again is quicker.
		attempt, cancelAttempt := context.WithTimeout(ctx, time.Second)
		err := rkaTopicVisible(attempt, adm, topic, partitions)
		cancelAttempt()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s created but not visible: %v", topic, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func rkaTopicVisible(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	d, ok := details[topic]
	switch {
	case !ok:
		return errors.New("not in the metadata")
	case d.Err != nil:
		return d.Err
	case len(d.Partitions) != int(partitions):
		return fmt.Errorf("%d of %d partitions in the metadata", len(d.Partitions), partitions)
	}
	resources, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return err
	}
	_, err = resources.On(topic, nil)
	return err
}

// rkaCreateServeTopics creates the three topics of names as serve itself
// would, so that a test about something else does not depend on serve's
// creation of topics.
func rkaCreateServeTopics(t *testing.T, adm *kadm.Client, names rkaNames, tableConfigs map[string]string) {
	t.Helper()
	rkaCreateTopic(t, adm, names.events, rkaPartitions, rkaEventsConfigs)
	if tableConfigs == nil {
		tableConfigs = map[string]string{"cleanup.policy": "compact"}
	}
	rkaCreateTopic(t, adm, names.table(), rkaPartitions, tableConfigs)
	rkaCreateTopic(t, adm, names.dlq(), rkaPartitions, map[string]string{"retention.ms": "-1", "cleanup.policy": "delete"})
}

// rkaEventsConfigs is what an events topic must have: the log is the
// source of truth, kept whole forever.
var rkaEventsConfigs = map[string]string{"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}

// rkaTopicConfigs returns the effective configs of a topic, defaults
// included.
func rkaTopicConfigs(t *testing.T, adm *kadm.Client, topic string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resources, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("failed to describe configs of %s: %v", topic, err)
	}
	rc, err := resources.On(topic, nil)
	if err != nil {
		t.Fatalf("failed to describe configs of %s: %v", topic, err)
	}
	out := make(map[string]string, len(rc.Configs))
	for _, c := range rc.Configs {
		if c.Value != nil {
			out[c.Key] = *c.Value
		}
	}
	return out
}

// rkaServeArgs are the arguments of `eventfold serve` against real Kafka.
func rkaServeArgs(brokers string, names rkaNames, dataDir, httpAddr string) []string {
	return []string{"serve", "--brokers", brokers, "--events-topic", names.events, "--group", names.group,
		"--data-dir", dataDir, "--http-addr", httpAddr, "--partitions", fmt.Sprint(rkaPartitions)}
}

// rkaServer is one `eventfold serve` process against real Kafka. (The
// bin* server runs the embedded broker and checks its address in the log.)
type rkaServer struct {
	t       *testing.T
	client  *testkit.Client
	log     *binLog
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
}

// rkaServe starts serve on dataDir; the cleanup stops it with SIGTERM
// (SIGKILL after 15 s) and prints its log if the test failed. Pass a
// t.TempDir() created before the call, so that it outlives the process.
func rkaServe(t *testing.T, bin, brokers string, names rkaNames, dataDir string) *rkaServer {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", binFreePort(t))
	s := &rkaServer{t: t, client: testkit.NewClient("http://" + httpAddr), log: &binLog{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, rkaServeArgs(brokers, names, dataDir, httpAddr)...)
	s.cmd.Env = binEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("failed to start eventfold serve: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop(15 * time.Second)
		if t.Failed() {
			t.Logf("eventfold serve on %s (pid %d) log:\n%s", httpAddr, s.cmd.Process.Pid, s.log.tail(32<<10))
		}
	})
	return s
}

// waitReady polls /readyz until 200, failing at once if the process exits.
func (s *rkaServer) waitReady(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		select {
		case <-s.done:
			s.t.Fatalf("eventfold serve exited before it was ready: %v", s.waitErr)
		default:
		}
		resp, err := hc.Get(s.client.Base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s/readyz not 200 within %s; last answer: %s", s.client.Base, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits up to grace, then kills.
func (s *rkaServer) stop(grace time.Duration) {
	s.t.Helper()
	select {
	case <-s.done:
		return
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.t.Errorf("failed to send SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(grace):
		s.t.Errorf("eventfold serve did not stop within %s of SIGTERM; killing it", grace)
		s.cmd.Process.Kill()
		<-s.done
	}
}

// rkaServeUntilExit runs serve, which is expected to give up by itself, and
// returns its exit code and output. Still running after timeout fails the
// test.
func rkaServeUntilExit(t *testing.T, bin, brokers string, names rkaNames, timeout time.Duration) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", binFreePort(t))
	cmd := exec.CommandContext(ctx, bin, rkaServeArgs(brokers, names, filepath.Join(t.TempDir(), "data"), httpAddr)...)
	cmd.Env = binEnv()
	out := &binLog{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("serve still running after %s; output:\n%s", timeout, out.tail(16<<10))
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("failed to run serve: %v", err)
	}
	t.Logf("serve exited with %d after %s", cmd.ProcessState.ExitCode(), time.Since(start).Round(time.Millisecond))
	return cmd.ProcessState.ExitCode(), out.String()
}
