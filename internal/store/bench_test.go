package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// BenchmarkRecover writes table records as goka's recovery does, a Set
// and a SetOffset each, cycling over 20,000 keys, into one partition:
// goka's own leveldb storage with goleveldb's defaults, the same with our
// options, and View with one partition's share of the default budget (of
// six). One op is one record. Alone, on one partition, the three were
// within the noise of each other (BENCHMARKS.md).
func BenchmarkRecover(b *testing.B) {
	// The average state at 10 events per customer, and about as
	// compressible as its JSON (zeros would flatter snappy).
	value := make([]byte, 1100)
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789abcdefghij\",:{}"
	for i := range value {
		value[i] = alphabet[rng.IntN(len(alphabet))]
	}
	for _, bench := range []struct {
		name  string
		build func(dir string) storage.Builder
	}{
		{"goka-leveldb", func(dir string) storage.Builder { return storage.BuilderWithOptions(dir, &opt.Options{}) }},
		{"goka-leveldb-our-options", func(dir string) storage.Builder { return storage.BuilderWithOptions(dir, options()) }},
		{"view", func(dir string) storage.Builder { return View(dir, DefaultBuffer/6, nil) }},
	} {
		b.Run(bench.name, func(b *testing.B) {
			st, err := bench.build(b.TempDir())("table", 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := st.Open(); err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			const keys = 20000
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := st.Set(fmt.Sprintf("cust-%07d", (i*7919)%keys), value); err != nil {
					b.Fatal(err)
				}
				if err := st.SetOffset(int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.MarkRecovered(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
