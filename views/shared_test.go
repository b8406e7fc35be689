package views

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/lovoo/goka/storage"

	"github.com/eventfold/eventfold/internal/memstore"
	"github.com/eventfold/eventfold/processor"
)

// TestSharedReplicaServesThroughAProcessorRestart: a shared replica reads
// the processor's partitions; when the processor closes one (it failed
// and is rebuilt, or a rebalance), the partition stays readable as it was
// until the processor opens it again, as the goka view a replica used to
// keep went on serving, with its position where it ends, in lookups and
// lists. Reopened on its kept copy, it serves while it catches up;
// reopened empty, the replica is not ready until it has recovered.
func TestSharedReplicaServesThroughAProcessorRestart(t *testing.T) {
	const id = "c-1"
	const partitions = 4
	s := newShared(partitions, NewHub(nil), slog.Default())
	// The processor's copies, kept across a close as on disk; fresh
	// replaces one with an empty copy (a processor without a kept copy).
	copies := map[int32]storage.Storage{}
	fresh := false
	build := s.builder(func(topic string, n int32) (storage.Storage, error) {
		if copies[n] == nil || fresh {
			st, err := memstore.Builder()(topic, n)
			if err != nil {
				return nil, err
			}
			copies[n] = st
		}
		return copies[n], nil
	})
	open := func(n int32) storage.Storage {
		t.Helper()
		st, err := build("table", n)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(); err != nil {
			t.Fatal(err)
		}
		return st
	}
	stores := make([]storage.Storage, partitions)
	for n := range int32(partitions) {
		stores[n] = open(n)
		if n == processor.PartitionFor(id, partitions) {
			if err := stores[n].Set(id, []byte(`{"id":"c-1","version":1}`)); err != nil {
				t.Fatal(err)
			}
			if err := stores[n].SetOffset(41); err != nil {
				t.Fatal(err)
			}
		}
		if s.holdsAll() {
			t.Fatalf("ready with %d of %d partitions recovered", n, partitions)
		}
		if err := stores[n].MarkRecovered(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(step string) error {
		t.Helper()
		tb, err := s.table()
		if err != nil {
			return err
		}
		value, err := tb.Get(id)
		if err == nil && rawOf(value) == nil {
			t.Fatalf("%s: %s not found", step, id)
		}
		return err
	}
	if err := read("recovered"); err != nil {
		t.Fatalf("recovered: %v", err)
	}

	n := processor.PartitionFor(id, partitions)
	if err := stores[n].Close(); err != nil {
		t.Fatal(err)
	}
	if err := read("closed"); err != nil {
		t.Fatalf("the processor closed the partition: %v, want the state as it was", err)
	}
	// Its position stays where the copy ends, so that its lag grows with
	// the table and reads with a bound on staleness refuse it.
	if got, ok := s.positions()[n]; !ok || got != 42 {
		t.Errorf("position of the closed partition: %d (%v), want 42", got, ok)
	}
	if list := listed(t, s); list != 1 {
		t.Errorf("listed %d customers while the partition was closed, want 1", list)
	}
	// Reopened on its kept copy, it serves while it catches up.
	stores[n] = open(n)
	if err := read("reopened on its kept copy"); err != nil {
		t.Fatalf("reopened on its kept copy, not yet recovered: %v, want the state as it was", err)
	}
	if err := stores[n].MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	// Reopened empty (a processor without a kept copy), it does not.
	if err := stores[n].Close(); err != nil {
		t.Fatal(err)
	}
	fresh = true
	stores[n] = open(n)
	if err := read("reopened empty"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("reopened empty, not yet recovered: %v, want ErrNotReady", err)
	}
	if err := stores[n].MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	s.settle(true)
	for _, st := range stores {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// listed counts the entries a list of the whole table reads.
func listed(t *testing.T, s *shared) int {
	t.Helper()
	it, err := s.local.IteratorWithRange("", keyLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Release()
	n := 0
	for it.Next() {
		n++
	}
	return n
}
