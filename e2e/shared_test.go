package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestReplicaSharesTheProcessorsCopy: a replica whose processor owns every
// partition serves lookups from the processor's copy and keeps no copy of
// its own (a fresh instance used to recover the whole table twice: into
// the processor's copy and into the view's). When a second instance joins
// the group, each processor owns only some partitions, and both replicas
// copy the whole table and serve every customer, as a replica must.
func TestReplicaSharesTheProcessorsCopy(t *testing.T) {
	t.Parallel()
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 6})
	topics := kafka.Topics{Events: "customer-events", Group: "customers", Partitions: 6, Replication: 1}
	dirA, dirB := t.TempDir(), t.TempDir()

	a := startPipelineStored(t, broker, topics, dirA)
	lines := testkit.Generate(1, 60, 300)
	want := a.produceAndAwaitFold(t, lines, 30*time.Second)
	viewDir := filepath.Join(dirA, "view", topics.Group)
	if entries, err := os.ReadDir(viewDir); err == nil && len(entries) > 0 {
		t.Errorf("the sole replica keeps a copy of its own: %d entries in its view directory", len(entries))
	}
	if keys := gaugeValue(t, a, "eventfold_view_keys"); keys < float64(len(want)) {
		t.Errorf("eventfold_view_keys = %v, want at least the %d customers", keys, len(want))
	}
	if n := sumCounter(t, a.reg, "eventfold_view_updates_total"); n < float64(len(want)) {
		t.Errorf("eventfold_view_updates_total = %v, want at least one per customer (%d)", n, len(want))
	}

	b := startPipelineStored(t, broker, topics, dirB)
	more := append(lines, testkit.Generate(2, 40, 200)...)
	want = testkit.ReferenceFold(t, more)
	b.produce(t, lineRecords(testkit.Generate(2, 40, 200))...)
	b.client.AwaitFold(t, want, 60*time.Second)
	a.client.AwaitFold(t, want, 60*time.Second)
	if entries, err := os.ReadDir(viewDir); err != nil || len(entries) == 0 {
		t.Errorf("with a second instance, the first one's replica copied nothing of the table (%v)", err)
	}
}

// TestSharedReplicaServesOnlyAcknowledgedWrites: the replica reads the
// processor's copy under its checkpoints, so a state the processor folded
// and Kafka did not acknowledge is never served. The broker fails every
// table write: the customer must stay unknown to lookups until the writes
// go through.
func TestSharedReplicaServesOnlyAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	broker, topics := startOnePartition(t)
	const id = "cust-unacked"
	// The broker holds each table write a second before failing it: the
	// processor holds the folded state meanwhile, unacknowledged.
	failing, failed := failTableWrites(t, broker, topics, time.Second)
	p := startPipelineStored(t, broker.Addr(), topics, t.TempDir())
	produceRecords(t, broker.Addr(), topics.Events, 30*time.Second, []*kgo.Record{
		customerEvent(id)("unacked-1", "customer.registered", `{"name":"Unacked","email":"unacked@example.org"}`),
	})
	deadline := time.Now().Add(30 * time.Second)
	for failed.Load() < 3 {
		if status, _ := p.client.Customer(t, id, ""); status == 200 {
			t.Fatalf("the replica served %s, whose table write Kafka never acknowledged", id)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d table writes failed", failed.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	failing.Store(false)
	deadline = time.Now().Add(30 * time.Second)
	for {
		status, c := p.client.Customer(t, id, "")
		if status == 200 && c.Version == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("customer %s: status %d once the table writes went through, want 200 at version 1", id, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
