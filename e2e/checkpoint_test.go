package e2e

import (
	"bytes"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestKeptProcessorStoreHoldsOnlyWhatTheTableHolds is
// TestProcessorNeverCommitsPastAFailedTableWrite across a stop: the broker
// fails every table write of the first instance, which folded a
// registration and a rename into its local copy, and the instance is
// stopped. The second instance keeps the first one's storage directory.
// Had the copy kept the writes the table never got, the second instance
// would take both events for duplicates and the customer would never be
// written; it must fold them again and serve what the table holds, and its
// kept copy must equal the table.
func TestKeptProcessorStoreHoldsOnlyWhatTheTableHolds(t *testing.T) {
	t.Parallel()
	broker, topics := startOnePartition(t)
	const id = "cust-kept"
	event := customerEvent(id)
	produceRecords(t, broker.Addr(), topics.Events, 30*time.Second, []*kgo.Record{
		event("kept-1", "customer.registered", `{"name":"Kept","email":"kept@example.org"}`),
		event("kept-2", "customer.renamed", `{"name":"Kept Twice"}`),
	})

	failing, failed := failTableWrites(t, broker, topics, 200*time.Millisecond)

	dir := t.TempDir()
	first := startPipelineStored(t, broker.Addr(), topics, dir)
	deadline := time.Now().Add(30 * time.Second)
	for sumCounter(t, first.reg, "eventfold_processor_restarts_total") < 1 || failed.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the processor was not restarted by failed table writes (%d failed)", failed.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	first.stop()
	failing.Store(false)

	second := startPipelineStored(t, broker.Addr(), topics, dir)
	deadline = time.Now().Add(30 * time.Second)
	for {
		status, c := second.client.Customer(t, id, "")
		if status == 200 && c.Version == 2 && c.Name == "Kept Twice" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("customer %s: status %d, state %+v; want version 2 named %q (%d table writes failed)",
				id, status, c, "Kept Twice", failed.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	second.stop()
	assertStoreEqualsTable(t, broker.Addr(), dir, topics)
}

// TestProcessorRestartRecoversOnlyTheChange stops an instance cleanly and
// starts it again on its storage directory: it reads no record of the
// table. Then its partitions move to a second instance, which folds more
// events, and back: the first one reads exactly the table records the
// second one wrote, and its copy equals the table.
func TestProcessorRestartRecoversOnlyTheChange(t *testing.T) {
	t.Parallel()
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 6})
	topics := kafka.Topics{Events: "customer-events", Group: "customers", Partitions: 6, Replication: 1}
	dirA, dirB := t.TempDir(), t.TempDir()
	const recovered = "eventfold_processor_recovered_records_total"

	a := startPipelineStored(t, broker, topics, dirA)
	a.produceAndAwaitFold(t, testkit.Generate(1, 60, 300), 30*time.Second)
	written := sumCounter(t, a.reg, "eventfold_table_writes_total")
	if written == 0 {
		t.Fatal("no table write: the test needs a table")
	}
	a.stop()

	a = startPipelineStored(t, broker, topics, dirA)
	if n := sumCounter(t, a.reg, recovered); n != 0 {
		t.Errorf("a clean restart read %v table records, want 0 of the %v written", n, written)
	}
	a.stop()

	b := startPipelineStored(t, broker, topics, dirB)
	if n := sumCounter(t, b.reg, recovered); n != written {
		t.Errorf("an instance with no copy read %v table records, want all %v", n, written)
	}
	b.produceAndAwaitFold(t, append(testkit.Generate(1, 60, 300), testkit.Generate(2, 40, 200)...), 30*time.Second)
	change := sumCounter(t, b.reg, "eventfold_table_writes_total")
	if change == 0 {
		t.Fatal("the second instance wrote nothing: the test needs a change")
	}
	b.stop()

	a = startPipelineStored(t, broker, topics, dirA)
	if n := sumCounter(t, a.reg, recovered); n != change {
		t.Errorf("the partitions came back with %v table records read, want the %v written meanwhile", n, change)
	}
	a.stop()
	assertStoreEqualsTable(t, broker, dirA, topics)
}

// assertStoreEqualsTable compares the processor's kept copy under dataDir
// with the latest value of every key of the table topic.
func assertStoreEqualsTable(t *testing.T, broker, dataDir string, topics kafka.Topics) {
	t.Helper()
	table := string(goka.GroupTable(goka.Group(topics.Group)))
	want := map[string][]byte{}
	for _, r := range readTopic(t, broker, table) {
		want[string(r.Key)] = r.Value
	}
	got := map[string][]byte{}
	build := store.Processor(filepath.Join(dataDir, "processor", topics.Group), store.DefaultBuffer, nil)
	for p := int32(0); p < topics.Partitions; p++ {
		st, err := build(table, p)
		if err != nil {
			t.Fatalf("failed to open the kept copy of partition %d: %v", p, err)
		}
		if err := st.Open(); err != nil {
			t.Fatal(err)
		}
		it, err := st.Iterator()
		if err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			v, err := it.Value()
			if err != nil {
				t.Fatal(err)
			}
			got[string(it.Key())] = bytes.Clone(v)
		}
		it.Release()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) == 0 {
		t.Fatal("the table is empty: nothing to compare")
	}
	for k, v := range want {
		if !bytes.Equal(got[k], v) {
			t.Errorf("key %s: kept copy %q, table %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("key %s is in the kept copy and not in the table", k)
		}
	}
}

// failTableWrites makes the broker fail every table write while failing
// is set (it starts set), after holding it for hold, as a broker going
// away would; failed counts them.
func failTableWrites(t *testing.T, broker *embedded.Broker, topics kafka.Topics, hold time.Duration) (failing *atomic.Bool, failed *atomic.Int64) {
	t.Helper()
	table := tableRef(t, broker, topics)
	failing, failed = new(atomic.Bool), new(atomic.Int64)
	failing.Store(true)
	cluster := broker.Cluster()
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		produce := req.(*kmsg.ProduceRequest)
		if !failing.Load() || !carriesTopic(produce, table) {
			return nil, nil, false
		}
		cluster.SleepControl(func() { time.Sleep(hold) })
		failed.Add(1)
		return failProduce(produce, kerr.MessageTooLarge.Code), nil, true
	})
	return failing, failed
}
