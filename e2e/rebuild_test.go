package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// The rebuild tests fold a topic with a live group, then run the built
// binary's `rebuild` into a new group and compare the two tables record
// for record: the fold is deterministic, so the same events at the same
// offsets give the same bytes.

func TestRebuildMatchesLiveTable(t *testing.T) {
	t.Parallel()
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 6})
	rbRebuildMatchesLive(t, broker, rbNames{events: "customer-events", live: "customers", rebuilt: "customers-v2"})
}

func TestRealKafkaRebuildMatchesLiveTable(t *testing.T) {
	t.Parallel()
	broker := testkit.RequireKafka(t)
	names := rbNames{
		events:  testkit.UniqueName("rebuild-events"),
		live:    testkit.UniqueName("rebuild-live"),
		rebuilt: testkit.UniqueName("rebuild-v2"),
	}
	deleteAfter(t, broker, []string{names.events, names.events + ".dlq", rbTable(names.live), rbTable(names.rebuilt)},
		[]string{names.live, names.rebuilt})
	rbRebuildMatchesLive(t, broker, names)
}

func TestRebuildRefusesLiveGroup(t *testing.T) {
	t.Parallel()
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 6})
	names := rbNames{events: "customer-events", live: "customers", rebuilt: "customers-v2"}
	lines := testkit.Generate(11, 20, 200)
	rbSetup(t, broker, names.events, names.live)
	rbProduce(t, broker, names.events, lines)
	rbRunLive(t, broker, names.events, names.live)
	adm := kafkaAdmin(t, broker)
	rbAwaitCaughtUp(t, adm, names.events, names.live, 60*time.Second)
	bin := binBuild(t)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"live group", []string{"--group", names.live}, "choose a new --group"},
		{"missing events topic", []string{"--group", names.rebuilt, "--events-topic", "no-such-events"}, "events topic does not exist"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			before := committedOffsets(t, adm, names.events, names.live, 6)
			code, out := rbRunBinary(t, bin, append([]string{"rebuild", "--erasure=off", "--brokers", broker}, test.args...)...)
			if code != 2 {
				t.Fatalf("rebuild %s exited %d, want 2; output:\n%s", strings.Join(test.args, " "), code, out)
			}
			if !strings.Contains(out, test.want) {
				t.Errorf("output does not say %q:\n%s", test.want, out)
			}
			if strings.Contains(out, "rebuild progress") {
				t.Errorf("a refused rebuild reported progress:\n%s", out)
			}
			if after := committedOffsets(t, adm, names.events, names.live, 6); !slices.Equal(before, after) {
				t.Errorf("committed offsets of %s moved from %v to %v", names.live, before, after)
			}
		})
	}
	// Metadata requests must not have created the mistyped topic.
	topics, err := adm.ListTopics(context.Background(), "no-such-events")
	if err != nil {
		t.Fatalf("failed to list topics: %v", err)
	}
	if topics.Has("no-such-events") {
		t.Error("rebuild created the missing events topic")
	}
}

// rbNames are the topic and groups of one rebuild test.
type rbNames struct {
	events, live, rebuilt string
}

func rbTable(group string) string { return group + "-table" }

// rbRebuildMatchesLive is the whole scenario on one broker.
func rbRebuildMatchesLive(t *testing.T, broker string, names rbNames) {
	// One malformed record among the events: both groups dead-letter it.
	lines := append(testkit.Generate(42, 300, 5000), testkit.Line{Key: "g42-malformed", Value: []byte("{not json")})
	events := len(lines)
	bin := binBuild(t)
	rbSetup(t, broker, names.events, names.live)
	rbProduce(t, broker, names.events, lines)
	rbRunLive(t, broker, names.events, names.live)
	adm := kafkaAdmin(t, broker)
	liveTook := rbAwaitCaughtUp(t, adm, names.events, names.live, 2*time.Minute)
	t.Logf("live group %s folded %d events in %s", names.live, events, liveTook.Round(time.Millisecond))

	// The live processor keeps running, as serve would during a rebuild.
	start := time.Now()
	code, out := rbRunBinary(t, bin, "rebuild", "--erasure=off", "--brokers", broker, "--events-topic", names.events,
		"--group", names.rebuilt, "--progress-interval", "250ms", "--timeout", "2m")
	t.Logf("rebuild exited %d after %s; output:\n%s", code, time.Since(start).Round(time.Millisecond), out)
	if code != 0 {
		t.Fatalf("rebuild exited %d, want 0", code)
	}
	if n := strings.Count(out, `msg="rebuild progress"`); n == 0 {
		t.Error("rebuild printed no progress line")
	}
	want := fmt.Sprintf("rebuilt group %s from %s: %d events folded", names.rebuilt, names.events, events)
	if !strings.Contains(out, want) {
		t.Errorf("summary does not say %q", want)
	}
	rbCheckProgressNumbers(t, out, events)
	if want := names.events + ".dlq grew by 1 during the rebuild"; !strings.Contains(out, want) {
		t.Errorf("summary does not say %q", want)
	}
	if got := committedOffsets(t, adm, names.events, names.rebuilt, 6); rbSum(got) != int64(events) {
		t.Errorf("group %s committed offsets %v, sum %d, want %d", names.rebuilt, got, rbSum(got), events)
	}

	live := rbReadTable(t, broker, rbTable(names.live))
	rebuilt := rbReadTable(t, broker, rbTable(names.rebuilt))
	if len(live) == 0 {
		t.Fatal("the live table is empty")
	}
	rbCompareTables(t, live, rebuilt)
	t.Logf("%d keys identical in %s and %s", len(live), rbTable(names.live), rbTable(names.rebuilt))

	// The new group has folded now: a second rebuild into it is refused.
	code, out = rbRunBinary(t, bin, "rebuild", "--erasure=off", "--brokers", broker, "--events-topic", names.events, "--group", names.rebuilt)
	if code != 2 || !strings.Contains(out, "choose a new --group") {
		t.Errorf("second rebuild into %s exited %d, want 2 with advice; output:\n%s", names.rebuilt, code, out)
	}
}

// rbProgressLine matches the numbers of a progress line of the text log.
var rbProgressLine = regexp.MustCompile(`msg="rebuild progress" group=\S+ folded=(\d+) target=(\d+) done=\S+ rate=\d+/s lag=(\d+) eta=\S+ partition_lag=\S+`)

// rbCheckProgressNumbers checks that the progress lines agree with Kafka:
// the target is the events produced, and folded plus lag never exceeds it
// when nothing else is produced.
func rbCheckProgressNumbers(t *testing.T, out string, events int) {
	t.Helper()
	matches := rbProgressLine.FindAllStringSubmatch(out, -1)
	if len(matches) == 0 {
		t.Errorf("no progress line matches %s", rbProgressLine)
		return
	}
	for _, m := range matches {
		// The pattern admits digits only: Atoi cannot fail.
		folded, _ := strconv.Atoi(m[1])
		target, _ := strconv.Atoi(m[2])
		lag, _ := strconv.Atoi(m[3])
		if target != events || folded+lag != events || folded > events {
			t.Errorf("progress line %q: want target %d = folded + lag", m[0], events)
		}
	}
}

func rbKafkaConfig(broker string) kafka.Config {
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{broker}
	return kc
}

// rbSetup creates the topics as serve does at start.
func rbSetup(t *testing.T, broker, events, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := kafka.Topics{Events: events, Group: group, Partitions: 6, Replication: 1}
	if _, err := kafka.Setup(ctx, rbKafkaConfig(broker), topics); err != nil {
		t.Fatalf("failed to set up topics: %v", err)
	}
}

// rbProduce produces lines with franz-go, whose default partitioner is
// Kafka's murmur2.
func rbProduce(t *testing.T, broker, topic string, lines []testkit.Line) {
	t.Helper()
	produceRecords(t, broker, topic, time.Minute, lineRecords(lines))
}

// rbRunLive runs the live group's processor in process until the test
// ends.
func rbRunLive(t *testing.T, broker, events, group string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	topics := kafka.Topics{Events: events, Group: group, Partitions: 6, Replication: 1}
	proc, err := processor.New(processor.Config{Kafka: rbKafkaConfig(broker), Topics: topics, Partitions: 6, Logger: log,
		RestartBackoff: 200 * time.Millisecond}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		awaitStopped(t, "live processor", done, 30*time.Second)
	})
}

// rbEnds returns the high-water mark of each partition of topic.
func rbEnds(t *testing.T, adm *kadm.Client, topic string) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("failed to list the end offsets of %s: %v", topic, err)
	}
	var ends []int64
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("failed to list the end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		for int(o.Partition) >= len(ends) {
			ends = append(ends, 0)
		}
		ends[o.Partition] = o.Offset
	})
	return ends
}

func rbSum(offsets []int64) int64 {
	var n int64
	for _, o := range offsets {
		n += o
	}
	return n
}

// rbAwaitCaughtUp waits until the group has committed every partition's
// high-water mark and returns how long that took.
func rbAwaitCaughtUp(t *testing.T, adm *kadm.Client, events, group string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ends := rbEnds(t, adm, events)
	for {
		committed := committedOffsets(t, adm, events, group, 6)
		if slices.Equal(committed, ends) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("group %s committed %v, not the end offsets %v, within %s", group, committed, ends, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rbReadTable reads a table topic from its start to its high-water marks
// and returns the latest value of each key.
func rbReadTable(t *testing.T, broker, topic string) map[string][]byte {
	t.Helper()
	ends := rbEnds(t, kafkaAdmin(t, broker), topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("failed to create kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	next := make([]int64, len(ends))
	values := map[string][]byte{}
	for !slices.Equal(next, ends) {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s up to %v of %v before the deadline", topic, next, ends)
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Fatalf("failed to fetch %s/%d: %v", topic, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Value == nil {
				delete(values, string(r.Key))
			} else {
				values[string(r.Key)] = r.Value
			}
			next[r.Partition] = r.Offset + 1
		})
	}
	return values
}

// rbCompareTables requires the same keys with the same bytes.
func rbCompareTables(t *testing.T, live, rebuilt map[string][]byte) {
	t.Helper()
	var missing, extra, differ []string
	for key, want := range live {
		got, ok := rebuilt[key]
		switch {
		case !ok:
			missing = append(missing, key)
		case !bytes.Equal(got, want):
			differ = append(differ, fmt.Sprintf("%s:\n  live    %s\n  rebuilt %s", key, want, got))
		}
	}
	for key := range rebuilt {
		if _, ok := live[key]; !ok {
			extra = append(extra, key)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(differ)
	if len(missing) > 0 {
		t.Errorf("%d keys of the live table missing from the rebuilt one, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	if len(extra) > 0 {
		t.Errorf("%d keys only in the rebuilt table, e.g. %v", len(extra), extra[:min(5, len(extra))])
	}
	if len(differ) > 0 {
		t.Errorf("%d keys differ, e.g.\n%s", len(differ), strings.Join(differ[:min(3, len(differ))], "\n"))
	}
}

// rbRunBinary runs the binary to completion within three minutes, in a
// directory of its own where a default --data-dir would land, and returns
// its exit code and combined output.
func rbRunBinary(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	r := command{path: bin, args: args, dir: t.TempDir(), timeout: 3 * time.Minute}.run(t)
	return r.code, r.output
}
