package views

import (
	"fmt"
	"sync/atomic"
	"testing"

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
	st, err := build("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
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
	st, err = build("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, sum := keys.Load(), versions.Load(); got != 40 || sum != 120 {
		t.Errorf("after reopening: keys = %d, versions = %d, want 40 and 120", got, sum)
	}
}
