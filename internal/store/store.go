// Package store builds the goka storages eventfold keeps on disk, with
// leveldb options chosen for them instead of goleveldb's defaults.
package store

import (
	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Scratch is for the processor's copy of its partitions, which is wiped
// at every start and recovered from the table topic: block compression
// would only cost CPU (snappy was a tenth of the fold's profile), and a
// larger write buffer means fewer compactions while a fold runs.
func Scratch(dir string) storage.Builder {
	return batchedBuilder(dir, &opt.Options{
		Compression:            opt.NoCompression,
		WriteBuffer:            8 * opt.MiB,
		BlockCacheCapacity:     2 * opt.MiB,
		OpenFilesCacheCapacity: 64,
		NoSync:                 true, // never read back after a crash
	})
}

// View is for a view's replica of the table, kept across restarts. The
// block cache is small because every partition of every view has its
// own, and the JSON values are left uncompressed: lookups read them on
// every request.
func View(dir string) storage.Builder {
	return storage.BuilderWithOptions(dir, &opt.Options{
		Compression:            opt.NoCompression,
		WriteBuffer:            4 * opt.MiB,
		BlockCacheCapacity:     4 * opt.MiB,
		OpenFilesCacheCapacity: 64,
	})
}
