package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Tables written through the buffer read back whole after a reopen.
func TestBufferedTablesReadBack(t *testing.T) {
	dir := t.TempDir()
	value := bytes.Repeat([]byte("v"), 1000)
	const n = 8000 // 8 MB: memtables of 2 MiB are flushed to tables
	db, closeFiles, err := openLevelDB(dir, options())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := db.Put([]byte(fmt.Sprintf("k%05d", i)), append(value, byte(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := closeFiles(); err != nil {
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.ldb"))
	if len(tables) == 0 {
		entries, _ := os.ReadDir(dir)
		t.Fatalf("no table was written; the directory holds %v", entries)
	}

	db, closeFiles, err = openLevelDB(dir, options())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		db.Close()
		closeFiles()
	}()
	for i := 0; i < n; i++ {
		got, err := db.Get([]byte(fmt.Sprintf("k%05d", i)), nil)
		if err != nil || !bytes.Equal(got, append(value, byte(i))) {
			t.Fatalf("key %d after reopening: %d bytes, %v", i, len(got), err)
		}
	}
}
