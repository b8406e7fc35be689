package processor

import (
	"bytes"
	"sync"
	"testing"

	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// TestCheckpointedReadsWhileTheProcessorWrites: partitioned serving reads
// the processor's storage while its callback writes, so an unacknowledged
// value is read and replaced at once. Run with -race, the read of a value
// outside the storage's lock was a data race (a torn slice header could
// be served); every read must see one whole value written.
func TestCheckpointedReadsWhileTheProcessorWrites(t *testing.T) {
	acks := newCheckpoints(prometheus.NewCounter(prometheus.CounterOpts{Name: "recovered"}))
	st, err := acks.builder(storage.MemoryBuilder())("table", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	values := [][]byte{bytes.Repeat([]byte("a"), 10), bytes.Repeat([]byte("b"), 1000)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 2000 {
			if err := st.Set("c1", values[i%2]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 2000 {
		v, err := st.Get("c1")
		if err != nil {
			t.Fatal(err)
		}
		if v != nil && !bytes.Equal(v, values[0]) && !bytes.Equal(v, values[1]) {
			t.Fatalf("read %d bytes that no write wrote", len(v))
		}
	}
	wg.Wait()
}
