package store

import (
	"fmt"
	"testing"
)

func TestBatchedStorageReadsItsPendingWrites(t *testing.T) {
	st, err := Scratch(t.TempDir())("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Open(); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// More than one batch, so some writes are flushed and some pending.
	n := flushEvery + flushEvery/2
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
