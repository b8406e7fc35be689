package views

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/eventfold/eventfold/internal/store"
)

func TestCountingStorageCountsKeysAfterRecovery(t *testing.T) {
	dir := t.TempDir()
	var keys atomic.Int64
	build := countingBuilder(store.View(dir, 1000, nil), &keys)
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
			if err := st.Set(fmt.Sprintf("k%02d", i), []byte(fmt.Sprint(round))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	if got := keys.Load(); got != 40 {
		t.Fatalf("keys after recovery = %d, want 40", got)
	}
	for _, step := range []struct {
		name string
		do   func() error
		want int64
	}{
		{"a new key", func() error { return st.Set("new", []byte("1")) }, 41},
		{"a known key", func() error { return st.Set("k00", []byte("2")) }, 41},
		{"a delete", func() error { return st.Delete("k01") }, 40},
		{"a delete of an absent key", func() error { return st.Delete("absent") }, 40},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := keys.Load(); got != step.want {
			t.Errorf("after %s: keys = %d, want %d", step.name, got, step.want)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if got := keys.Load(); got != 0 {
		t.Errorf("keys after close = %d, want 0", got)
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
	if got := keys.Load(); got != 40 {
		t.Errorf("keys after reopening = %d, want 40", got)
	}
}
