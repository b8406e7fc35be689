package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// TestBinaryKcatSampleMatchesReferenceFold loads the sample with kcat, a
// librdkafka client, into the built binary's embedded broker. kcat's
// default partitioner (consistent_random, CRC32) places keys differently
// from Kafka's Java client; murmur2_random is the Java one, so every event
// must land on its key's partition and none may be dead-lettered.
func TestBinaryKcatSampleMatchesReferenceFold(t *testing.T) {
	t.Parallel()
	kcat := binKcat(t)
	srv := binServeReady(t, binBuild(t), 60*time.Second)

	lines := testkit.ReadLines(t, testkit.SampleFile(t))
	want := testkit.ReferenceFold(t, lines)
	tally := binTallyDecisions(t, lines)
	if n := binVersionSum(want); n != tally.accepted {
		t.Fatalf("reference fold: versions sum to %d, but %d events are accepted", n, tally.accepted)
	}

	start := time.Now()
	binKcatProduce(t, kcat, srv.kafkaAddr, lines, "-X", "partitioner=murmur2_random")
	srv.client.AwaitFold(t, want, 60*time.Second)
	t.Logf("kcat produced %d events; folded like the reference in %s", len(lines), time.Since(start).Round(time.Millisecond))

	m := binAwaitMetrics(t, srv.client, 30*time.Second, func(m binMetrics) []string {
		var problems []string
		if got := m.sum("eventfold_events_folded_total"); got != float64(tally.accepted) {
			problems = append(problems, fmt.Sprintf("eventfold_events_folded_total sums to %v, want %d accepted events", got, tally.accepted))
		}
		for _, reason := range processor.Reasons {
			if got, want := m.get(t, "eventfold_events_rejected_total", "reason", reason), tally.rejected[reason]; got != float64(want) {
				problems = append(problems, fmt.Sprintf("eventfold_events_rejected_total{reason=%q} = %v, want %d", reason, got, want))
			}
		}
		for _, reason := range processor.DeadLetterReasons {
			if got := m.get(t, "eventfold_dlq_records_total", "reason", reason); got != 0 {
				problems = append(problems, fmt.Sprintf("eventfold_dlq_records_total{reason=%q} = %v, want 0", reason, got))
			}
		}
		return problems
	})
	// A restarted goka processor may redeliver records, which the fold
	// counts as duplicates by offset; only an undisturbed run is exact.
	dups := m.sum("eventfold_events_duplicate_total")
	if m.sum("eventfold_processor_restarts_total") == 0 && dups != float64(tally.duplicates) {
		t.Errorf("eventfold_events_duplicate_total = %v, want %d", dups, tally.duplicates)
	} else if dups < float64(tally.duplicates) {
		t.Errorf("eventfold_events_duplicate_total = %v, want at least %d", dups, tally.duplicates)
	}
}

// TestBinaryRestartKeepsState stops the binary with SIGTERM and starts it
// again on the same data directory: the embedded broker's log, the table
// and the group's offsets survive, nothing is folded twice, and new events
// fold on top of the recovered state.
func TestBinaryRestartKeepsState(t *testing.T) {
	t.Parallel()
	bin := binBuild(t)
	cfg := binNewServeConfig(t)
	first := binServe(t, bin, cfg)
	first.waitReady(60 * time.Second)

	want := first.produceSample(t, bin, 60*time.Second)

	start := time.Now()
	if code := first.stop(20 * time.Second); code != 0 {
		t.Fatalf("eventfold serve exited with %d after SIGTERM, want 0", code)
	}
	t.Logf("stopped with SIGTERM in %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	second := binServe(t, bin, cfg)
	second.waitReady(60 * time.Second)
	t.Logf("restarted and ready in %s", time.Since(start).Round(time.Millisecond))
	second.client.AwaitFold(t, want, 60*time.Second)
	m := binScrape(t, second.client)
	if got := m.sum("eventfold_events_folded_total"); got != 0 {
		t.Errorf("after the restart eventfold_events_folded_total = %v, want 0: events were folded twice", got)
	}

	id := binActiveCustomer(t, want)
	more := []testkit.Line{
		binEvent("evt-e2e-restart-1", id, processor.TypeRenamed, "2026-06-01T00:00:00Z", `{"name":"Ada Restart"}`),
		binEvent("evt-e2e-restart-2", "cust-e2e-restart", processor.TypeRegistered, "2026-06-01T00:01:00Z",
			`{"name":"Grace Restart","email":"grace@example.org"}`),
		binEvent("evt-e2e-restart-3", "cust-e2e-restart", processor.TypeEmailChanged, "2026-06-01T00:02:00Z",
			`{"email":"grace.restart@example.org"}`),
	}
	next := binFoldOnto(t, want, more)
	if next[id].Version != want[id].Version+1 {
		t.Fatalf("%s: the rename gives version %d, want %d", id, next[id].Version, want[id].Version+1)
	}
	command{path: bin, args: []string{"produce", "--erasure=off", "--brokers", second.kafkaAddr}, stdin: valueLines(more)}.succeed(t)
	second.client.AwaitFold(t, next, 60*time.Second)
	binAwaitMetrics(t, second.client, 30*time.Second, func(m binMetrics) []string {
		if got := m.sum("eventfold_events_folded_total"); got != float64(len(more)) {
			return []string{fmt.Sprintf("eventfold_events_folded_total = %v after the restart, want %d", got, len(more))}
		}
		return nil
	})
}

// binActiveCustomer returns the first active customer of a fold in id
// order: one a rename is accepted for.
func binActiveCustomer(t *testing.T, states map[string]processor.Customer) string {
	t.Helper()
	for _, id := range testkit.Registered(states) {
		if states[id].Status == processor.StatusActive {
			return id
		}
	}
	t.Fatal("the reference fold has no active customer")
	return ""
}

// TestBinaryWrongPartitionGoesToDLQ forces records onto partition 0 with
// kcat -p 0. Those whose key hashes elsewhere must be dead-lettered as
// wrong_partition, untouched, and must not create customers; a record that
// does belong to partition 0 is folded normally.
func TestBinaryWrongPartitionGoesToDLQ(t *testing.T) {
	t.Parallel()
	kcat := binKcat(t)
	srv := binServeReady(t, binBuild(t), 60*time.Second)

	var wrong []testkit.Line
	var control testkit.Line
	for i := 1; len(wrong) < 5 || control.Key == ""; i++ {
		key := fmt.Sprintf("cust-e2e-wp-%03d", i)
		l := binEvent(fmt.Sprintf("evt-e2e-wp-%03d", i), key, processor.TypeRegistered, "2026-06-01T00:00:00Z",
			fmt.Sprintf(`{"name":"Wrong Partition %d","email":"wp%d@example.org"}`, i, i))
		switch {
		case processor.PartitionFor(key, binPartitions) != 0 && len(wrong) < 5:
			wrong = append(wrong, l)
		case processor.PartitionFor(key, binPartitions) == 0 && control.Key == "":
			control = l
		}
	}
	// The control goes last on the same partition: once it is folded, the
	// records before it were decided too.
	binKcatProduce(t, kcat, srv.kafkaAddr, append(append([]testkit.Line(nil), wrong...), control), "-p", "0")

	want := binFoldOnto(t, nil, []testkit.Line{control})
	for _, l := range wrong {
		want[l.Key] = processor.Customer{} // never registered: 404
	}
	srv.client.AwaitFold(t, want, 60*time.Second)
	binAwaitMetrics(t, srv.client, 30*time.Second, func(m binMetrics) []string {
		var problems []string
		for _, series := range []struct{ name, reason string }{
			{"eventfold_dlq_records_total", processor.ReasonWrongPartition},
			{"eventfold_events_rejected_total", processor.ReasonWrongPartition},
		} {
			if got := m.get(t, series.name, "reason", series.reason); got != float64(len(wrong)) {
				problems = append(problems, fmt.Sprintf("%s{reason=%q} = %v, want %d", series.name, series.reason, got, len(wrong)))
			}
		}
		if got := m.get(t, "eventfold_dlq_records_total", "reason", processor.ReasonMalformed); got != 0 {
			problems = append(problems, fmt.Sprintf("eventfold_dlq_records_total{reason=\"malformed\"} = %v, want 0", got))
		}
		if got := m.sum("eventfold_events_folded_total"); got != 1 {
			problems = append(problems, fmt.Sprintf("eventfold_events_folded_total = %v, want 1 (the control)", got))
		}
		return problems
	})

	dlq := binReadDLQ(t, srv.kafkaAddr, len(wrong))
	byKey := map[string]*kgo.Record{}
	for _, r := range dlq {
		byKey[string(r.Key)] = r
	}
	for _, l := range wrong {
		r, ok := byKey[l.Key]
		if !ok {
			t.Errorf("no dead letter for %s", l.Key)
			continue
		}
		h := map[string]string{}
		for _, hd := range r.Headers {
			h[hd.Key] = string(hd.Value)
		}
		wantPartition := processor.PartitionFor(l.Key, binPartitions)
		switch {
		case h[processor.HeaderReason] != processor.ReasonWrongPartition:
			t.Errorf("%s: %s = %q, want %q", l.Key, processor.HeaderReason, h[processor.HeaderReason], processor.ReasonWrongPartition)
		case h[processor.HeaderTopic] != binEventsTopic || h[processor.HeaderPartition] != "0":
			t.Errorf("%s: dead letter says it came from %s/%s, want %s/0", l.Key, h[processor.HeaderTopic], h[processor.HeaderPartition], binEventsTopic)
		case !strings.Contains(h[processor.HeaderError], "partition "+strconv.Itoa(int(wantPartition))):
			t.Errorf("%s: %s = %q does not name partition %d", l.Key, processor.HeaderError, h[processor.HeaderError], wantPartition)
		case string(r.Value) != string(l.Value):
			t.Errorf("%s: dead letter value %s, want the original %s", l.Key, r.Value, l.Value)
		}
	}
}

// binReadDLQ reads the dead-letter topic from the start until it has n
// records, failing after 30 s; it then reads a moment longer to catch
// records beyond n.
func binReadDLQ(t *testing.T, broker string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(binDLQTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("failed to create a Kafka client: %v", err)
	}
	defer cl.Close()
	var got []*kgo.Record
	deadline := time.Now().Add(30 * time.Second)
	for extra := false; ; {
		wait := time.Until(deadline)
		if len(got) >= n {
			if extra {
				break
			}
			extra, wait = true, time.Second
		}
		if wait <= 0 {
			t.Fatalf("read %d dead letters from %s within 30s, want %d", len(got), binDLQTopic, n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fetches := cl.PollFetches(ctx)
		cancel()
		fetches.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				t.Fatalf("failed to fetch %s/%d: %v", topic, p, err)
			}
		})
		got = append(got, fetches.Records()...)
	}
	if len(got) != n {
		t.Errorf("%s holds %d records, want %d", binDLQTopic, len(got), n)
	}
	return got
}
