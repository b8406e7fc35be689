package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestBatchedStorageReadsItsPendingWrites(t *testing.T) {
	st, err := Processor(t.TempDir(), 1000, nil)("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// More than one batch, so some writes are flushed and some pending.
	n := 50
	for i := 0; i < n; i++ {
		if err := st.Set(fmt.Sprintf("k%05d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOffset(int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete("k00003"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  string
		want string
	}{{"k00000", "0"}, {"k00003", ""}, {fmt.Sprintf("k%05d", n-1), fmt.Sprint(n - 1)}, {"absent", ""}} {
		got, err := st.Get(tt.key)
		if err != nil || string(got) != tt.want {
			t.Errorf("Get(%s) = %q, %v; want %q", tt.key, got, err, tt.want)
		}
		has, err := st.Has(tt.key)
		if err != nil || has != (tt.want != "") {
			t.Errorf("Has(%s) = %v, %v", tt.key, has, err)
		}
	}
	if off, err := st.GetOffset(-1); err != nil || off != int64(n-1) {
		t.Errorf("GetOffset = %d, %v; want %d", off, err, n-1)
	}
	it, err := st.Iterator()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Release()
	count := 0
	for it.Next() {
		count++
	}
	if count != n-1 {
		t.Errorf("iterated %d keys, want %d (all written, one deleted)", count, n-1)
	}
}

// A view's storage is kept across restarts, so what leveldb holds after a
// crash must be a prefix of the writes with the offset of its last one:
// the records after it are then read again from the table topic.
func TestBatchedStorageKeepsAConsistentPrefixAfterACrash(t *testing.T) {
	dir := t.TempDir()
	st, err := View(dir, 2000, nil)("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	const n = 100
	write := func(i int) {
		t.Helper()
		if err := st.Set(fmt.Sprintf("k%03d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOffset(int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n-1; i++ {
		write(i)
	}
	b := st.(*batched)
	// The crash comes between two batches, with the last write pending:
	// alone, it is below a batch.
	if err := b.flush(); err != nil {
		t.Fatal(err)
	}
	write(n - 1)
	b.mu.Lock()
	pending := len(b.pending)
	b.mu.Unlock()
	if pending == 0 {
		t.Fatal("nothing pending: the test needs writes that a crash loses")
	}
	// A crash: the database goes away without the pending writes, and
	// the file lock with the process.
	if err := errors.Join(b.db.Close(), b.closeFiles()); err != nil {
		t.Fatal(err)
	}

	st, err = View(dir, 2000, nil)("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	offset, err := st.GetOffset(-1)
	if err != nil {
		t.Fatal(err)
	}
	if offset < 0 || offset >= n-1 {
		t.Fatalf("offset after the crash = %d; want one of a flushed batch, below %d", offset, n-1)
	}
	for i := 0; i < n; i++ {
		v, err := st.Get(fmt.Sprintf("k%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		if kept := v != nil; kept != (int64(i) <= offset) {
			t.Errorf("key %d kept = %v with offset %d: not the prefix up to the offset", i, kept, offset)
		}
	}
}

// The budget is shared by the partitions a builder has open.
func TestBatchedStorageSharesItsBudget(t *testing.T) {
	build := Processor(t.TempDir(), 4000, nil)
	var parts []*batched
	for p := int32(0); p < 2; p++ {
		st, err := build("table", p)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(); err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		parts = append(parts, st.(*batched))
	}
	value := make([]byte, 100)
	for i := 0; i < 100; i++ {
		if err := parts[0].Set(fmt.Sprintf("k%03d", i), value); err != nil {
			t.Fatal(err)
		}
		if err := parts[0].SetOffset(int64(i)); err != nil {
			t.Fatal(err)
		}
		parts[0].mu.Lock()
		held := parts[0].pendingBytes + bytesOf(parts[0].writing)
		parts[0].mu.Unlock()
		if held > 2000+len("k000")+len(value)+entryOverhead {
			t.Fatalf("%d bytes pending or being written in one of two partitions, over its share of 2000", held)
		}
	}
	// Rewriting one key does not grow what is pending.
	before := parts[1].pendingBytes
	for i := 0; i < 10; i++ {
		if err := parts[1].Set("same", value); err != nil {
			t.Fatal(err)
		}
	}
	if grew := parts[1].pendingBytes - before; grew > len("same")+entryOverhead+len(value) {
		t.Errorf("ten writes of one key added %d pending bytes", grew)
	}
}

// A view partition whose files are corrupted starts empty, to be
// recovered from the table topic, when the builder allows it; otherwise
// the open fails with ErrCorrupted.
func TestViewStartsEmptyWhenCorrupted(t *testing.T) {
	dir := t.TempDir()
	st, err := View(dir, 1000, nil)("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := st.Set(fmt.Sprintf("k%03d", i), []byte("value")); err != nil {
			t.Fatal(err)
		}
		if err := st.SetOffset(int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	manifests, _ := filepath.Glob(filepath.Join(dir, "table.0", "MANIFEST-*"))
	if len(manifests) != 1 {
		t.Fatalf("want one MANIFEST, found %v", manifests)
	}
	if err := os.WriteFile(manifests[0], bytes.Repeat([]byte{0xff}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := View(dir, 1000, nil)("table", 0); !errors.Is(err, ErrCorrupted) {
		t.Fatalf("open without onCorrupt: %v, want ErrCorrupted", err)
	}
	var told string
	st, err = View(dir, 1000, func(path string, err error) { told = path })("table", 0)
	if err != nil {
		t.Fatalf("open with onCorrupt: %v", err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if told != filepath.Join(dir, "table.0") {
		t.Errorf("onCorrupt told %q", told)
	}
	if offset, err := st.GetOffset(-1); err != nil || offset != -1 {
		t.Errorf("offset of the emptied storage = %d, %v; want -1 (recover from the start)", offset, err)
	}
	if v, err := st.Get("k000"); err != nil || v != nil {
		t.Errorf("Get after emptying = %q, %v; want nothing", v, err)
	}
}

// bytesOf is what a batch of pending writes counts against the budget.
func bytesOf(writes map[string][]byte) int {
	n := 0
	for k, v := range writes {
		n += len(k) + len(v) + entryOverhead
	}
	return n
}
