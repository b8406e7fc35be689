package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// rkaFastCompaction makes the broker compact a table within seconds: a
// segment rolls when a record arrives 100 ms after the segment's first
// (segment.bytes cannot go below 1 MiB on Kafka 4), and the cleaner, which
// never touches the active segment, takes any rolled segment with a little
// dirt in it at its next pass (log.cleaner.backoff.ms=1000 on the test
// broker).
var rkaFastCompaction = map[string]string{
	"cleanup.policy":            "compact",
	"segment.ms":                "100",
	"segment.bytes":             "1048576",
	"min.cleanable.dirty.ratio": "0.01",
	"delete.retention.ms":       "100",
	"min.compaction.lag.ms":     "0",
}

// TestRealKafkaTableCompaction lets real Kafka compact the group table
// under a running serve, then starts a second serve from scratch: its view
// recovers from the compacted table alone and must show every customer
// exactly as the first instance and the reference fold do.
func TestRealKafkaTableCompaction(t *testing.T) {
	brokers := testkit.RequireKafka(t)
	t.Parallel()
	bin := binBuild(t)
	adm := kafkaAdmin(t, brokers)
	names := newKafkaNames(t, brokers, "rka-compact")
	createServeTopics(t, adm, names, rkaFastCompaction)
	first := rkaServe(t, bin, brokers, names, t.TempDir())
	first.waitReady(60 * time.Second)

	// Many updates to few customers: most table records are superseded.
	lines := testkit.Generate(31, 50, 8000)
	produced := 5000
	rkaProduce(t, brokers, names.events, lines[:produced])
	first.client.AwaitFold(t, testkit.ReferenceFold(t, lines[:produced]), 90*time.Second)
	before := rkaCountRecords(t, adm, brokers, names.table())
	t.Logf("table after %d events: %d records in %d offsets", produced, before.records, before.offsets)

	// Keep a trickle of events coming: only a record appended after
	// segment.ms rolls the active segment, and only rolled segments are
	// compacted.
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		after := rkaCountRecords(t, adm, brokers, names.table())
		if after.records*2 <= after.offsets {
			t.Logf("table compacted after %s and %d more events: %d records left of %d offsets",
				time.Since(start).Round(time.Millisecond), produced-5000, after.records, after.offsets)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("table not compacted within %s: %d records in %d offsets", time.Since(start).Round(time.Second), after.records, after.offsets)
		}
		next := min(produced+20, len(lines))
		rkaProduce(t, brokers, names.events, lines[produced:next])
		produced = next
		time.Sleep(500 * time.Millisecond)
	}
	want := testkit.ReferenceFold(t, lines[:produced])
	first.client.AwaitFold(t, want, 60*time.Second)

	// A fresh instance joins the group and rebuilds its view from the
	// compacted table; its processor takes over some partitions, whose
	// table state it recovers from the compacted table too.
	second := rkaServe(t, bin, brokers, names, t.TempDir())
	second.waitReady(60 * time.Second)
	second.client.AwaitFold(t, want, 60*time.Second)
	first.client.AwaitFold(t, want, 60*time.Second)
	for _, id := range testkit.Registered(want) {
		a, b := rkaCustomerJSON(t, first, id), rkaCustomerJSON(t, second, id)
		if a != b {
			t.Errorf("customer %s differs between the instances:\nfirst  %s\nsecond %s", id, a, b)
		}
	}
	t.Logf("%d customers from %d events equal on both instances and in the reference fold", len(testkit.Registered(want)), produced)
}

// rkaCustomerJSON is a customer's state as an instance serves it, all
// fields included: both instances read the same table, so even the
// offsets must agree.
func rkaCustomerJSON(t *testing.T, s *server, id string) string {
	t.Helper()
	status, c := s.client.Customer(t, id, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s/customers/%s: status %d", s.client.Base, id, status)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("failed to encode customer %s: %v", id, err)
	}
	return string(b)
}

// rkaProduce produces lines with franz-go, whose default partitioner is the
// Java client's murmur2, in order per key.
func rkaProduce(t *testing.T, brokers, topic string, lines []testkit.Line) {
	t.Helper()
	produceRecords(t, brokers, topic, 30*time.Second, lineRecords(lines), kgo.ProducerLinger(5*time.Millisecond))
}

// rkaRecordCount compares what a topic holds with the offsets it used:
// without compaction the two are equal.
type rkaRecordCount struct {
	records, offsets int64
}

// rkaCountRecords reads a topic from its start to its current end offsets
// and counts the records. The last record before each end offset sits in
// the active segment, which the cleaner never touches, so a partition is
// done once that offset (or a later one) has been read.
func rkaCountRecords(t *testing.T, adm *kadm.Client, brokers, topic string) rkaRecordCount {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("failed to list start offsets of %s: %v", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("failed to list end offsets of %s: %v", topic, err)
	}
	var count rkaRecordCount
	end := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(topic, o.Partition)
		count.offsets += o.Offset - s.Offset
		if o.Offset > s.Offset {
			end[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().At(s.Offset)
		}
	})
	if len(end) == 0 {
		return count
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))
	if err != nil {
		t.Fatalf("failed to create kgo consumer: %v", err)
	}
	defer cl.Close()
	for len(end) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records of %s; partitions %v not read to their end: %v", count.records, topic, end, ctx.Err())
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("failed to fetch %s/%d: %v", topic, partition, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			e, ok := end[r.Partition]
			if !ok {
				return // a partition already read to its end
			}
			if r.Offset < e { // later records were written after the listing
				count.records++
			}
			if r.Offset >= e-1 {
				delete(end, r.Partition)
			}
		})
	}
	return count
}
