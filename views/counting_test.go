package views

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/lovoo/goka/storage"

	"github.com/eventfold/eventfold/internal/store"
)

// The versions are summed as the keys are counted: the total of accepted
// events that survives restarts.
func TestCountingStorageCountsKeysAfterRecovery(t *testing.T) {
	dir := t.TempDir()
	var keys, versions atomic.Int64
	build := countingBuilder(store.View(dir, 1000, nil), &keys, &versions)
	value := func(key string, version int) []byte {
		return []byte(fmt.Sprintf(`{"id":%q,"version":%d,"status":"active"}`, key, version))
	}
	st := openCounting(t, build)
	// Recovery writes every key several times, as an uncompacted table does.
	for round := 0; round < 3; round++ {
		for i := 0; i < 40; i++ {
			if err := st.Set(fmt.Sprintf("k%02d", i), value(fmt.Sprintf("k%02d", i), round+1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	if got, sum := keys.Load(), versions.Load(); got != 40 || sum != 120 {
		t.Fatalf("after recovery: keys = %d, versions = %d, want 40 and 120", got, sum)
	}
	for _, step := range []struct {
		name string
		do   func() error
		want int64
		sum  int64
	}{
		{"a new key", func() error { return st.Set("new", value("new", 1)) }, 41, 121},
		{"a known key", func() error { return st.Set("k00", value("k00", 5)) }, 41, 123},
		{"a delete", func() error { return st.Delete("k01") }, 40, 120},
		{"a delete of an absent key", func() error { return st.Delete("absent") }, 40, 120},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got, sum := keys.Load(), versions.Load(); got != step.want || sum != step.sum {
			t.Errorf("after %s: keys = %d, versions = %d, want %d and %d", step.name, got, sum, step.want, step.sum)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got, sum := keys.Load(), versions.Load(); got != 0 || sum != 0 {
		t.Errorf("after close: keys = %d, versions = %d, want 0", got, sum)
	}

	// A restart counts what the previous run stored.
	st = openCounting(t, build)
	defer st.Close()
	st.(*countingStorage).awaitCount()
	if got, sum := keys.Load(), versions.Load(); got != 40 || sum != 120 {
		t.Errorf("after reopening: keys = %d, versions = %d, want 40 and 120", got, sum)
	}
}

// iterations counts the passes over a storage.
type iterations struct {
	storage.Storage
	n *atomic.Int64
}

func (s iterations) Iterator() (storage.Iterator, error) {
	s.n.Add(1)
	return s.Storage.Iterator()
}

// A restart on a kept copy passes over it once, in the background, and
// counts the change that recovery writes, before and after that pass ends,
// by the difference each write makes. Before, it passed over the copy at
// the open and again once recovered, on the way to ready.
func TestCountingStorageCountsAKeptCopyOnce(t *testing.T) {
	dir := t.TempDir()
	value := func(key string, version int) []byte {
		return []byte(fmt.Sprintf(`{"id":%q,"version":%d,"status":"active"}`, key, version))
	}
	var keys, versions, passes atomic.Int64
	build := countingBuilder(func(topic string, partition int32) (storage.Storage, error) {
		st, err := store.View(dir, 1000, nil)(topic, partition)
		return iterations{st, &passes}, err
	}, &keys, &versions)
	st := openCounting(t, build)
	for i := range 1000 {
		if err := st.Set(fmt.Sprintf("k%04d", i), value("k", 2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	passes.Store(0)
	st = openCounting(t, build)
	defer st.Close()
	// The change since the checkpoint: a new key, a newer version, a
	// delete, a delete of an absent key, written while the count may run.
	for _, write := range []func() error{
		func() error { return st.Set("new", value("new", 1)) },
		func() error { return st.Set("k0000", value("k", 7)) },
		func() error { return st.Delete("k0001") },
		func() error { return st.Delete("absent") },
	} {
		if err := write(); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	st.(*countingStorage).awaitCount()
	if err := st.Set("after", value("after", 3)); err != nil {
		t.Fatal(err)
	}
	// 1000 keys of version 2, one more of version 1, one at 7 instead of
	// 2, one deleted, one more of version 3.
	if got, sum := keys.Load(), versions.Load(); got != 1001 || sum != 2000+1+5-2+3 {
		t.Errorf("after the restart: keys = %d, versions = %d, want 1001 and %d", got, sum, 2000+1+5-2+3)
	}
	if n := passes.Load(); n != 1 {
		t.Errorf("the restart passed over the kept copy %d times, want 1", n)
	}
}

// openCounting builds partition 0 of the table and opens it.
func openCounting(t *testing.T, build storage.Builder) storage.Storage {
	t.Helper()
	st, err := build("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	return st
}
