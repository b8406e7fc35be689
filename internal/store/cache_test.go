package store

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// TestValueCacheStaysWithinItsShare fills a cache past its share and checks
// its bytes never pass it, that the newest value is kept, and that an
// entry over a quarter of the share is not kept at all.
func TestValueCacheStaysWithinItsShare(t *testing.T) {
	open := new(atomic.Int64)
	open.Store(2)
	c := valueCache{budget: 20_000, open: open} // a share of 10,000 bytes
	value := make([]byte, 100)
	for i := range 1000 {
		key := fmt.Sprintf("k%04d", i)
		c.put(key, value)
		if c.bytes > c.share() {
			t.Fatalf("after %d puts the cache holds %d bytes, over its share of %d", i+1, c.bytes, c.share())
		}
		if _, ok := c.get(key); !ok {
			t.Fatalf("the value just put for %s is not kept", key)
		}
	}
	sum := 0
	for k, v := range c.entries {
		sum += len(k) + len(v) + entryOverhead
	}
	if sum != c.bytes {
		t.Errorf("the cache counts %d bytes, its entries are %d", c.bytes, sum)
	}
	c.put("big", make([]byte, 3000))
	if _, ok := c.get("big"); ok {
		t.Error("a value over a quarter of the share was kept")
	}
}

// TestBatchedStorageKeepsValuesAfterTheirBatch reads values written in
// batches long flushed, rewritten and deleted, through the cache and
// through leveldb (after a reopen, which starts with an empty cache): each
// read answers the last write.
func TestBatchedStorageKeepsValuesAfterTheirBatch(t *testing.T) {
	dir := t.TempDir()
	build := batchedBuilder(dir, 1000, 1<<20, options(), nil, nil)
	want := map[string]string{}
	write := func(st interface {
		Set(string, []byte) error
		Delete(string) error
		SetOffset(int64) error
	}) {
		for i := range 300 {
			key := fmt.Sprintf("k%03d", i%100)
			var err error
			switch {
			case i%7 == 0:
				err, want[key] = st.Delete(key), ""
			default:
				value := fmt.Sprintf("v%d", i)
				err, want[key] = st.Set(key, []byte(value)), value
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := st.SetOffset(int64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for round := range 2 {
		st, err := build("table", 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Open(); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkRecovered(); err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			write(st)
		}
		for pass := range 2 { // the second pass reads what the first kept
			for key, value := range want {
				got, err := st.Get(key)
				if err != nil || string(got) != value {
					t.Fatalf("round %d pass %d: Get(%s) = %q, %v; want %q", round, pass, key, got, err, value)
				}
			}
		}
		if len(st.(*batched).cache.entries) == 0 {
			t.Errorf("round %d: no value kept (written, or read from leveldb)", round)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatchedStorageKeepsNothingWhileRecovering: the values a partition's
// recovery writes are not kept (they would raise the restore's peak
// memory); those written after MarkRecovered are.
func TestBatchedStorageKeepsNothingWhileRecovering(t *testing.T) {
	st, err := batchedBuilder(t.TempDir(), 1000, 1<<20, options(), nil, nil)("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	set := func(from, to int) {
		for i := from; i < to; i++ {
			if err := st.Set(fmt.Sprintf("k%03d", i), make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
			if err := st.SetOffset(int64(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	set(0, 100)
	cache := &st.(*batched).cache
	if len(cache.entries) != 0 {
		t.Fatalf("recovery's writes kept: %d entries", len(cache.entries))
	}
	if err := st.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	set(100, 200)
	if len(cache.entries) == 0 {
		t.Fatal("writes after recovery not kept")
	}
}
