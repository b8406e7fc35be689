// Package store builds the goka storages eventfold keeps on disk, with
// leveldb options chosen for them instead of goleveldb's defaults.
package store

import (
	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// DefaultBuffer is the default bound of the writes a storage holds in
// memory, over all its partitions, before writing them to leveldb.
const DefaultBuffer = 8 << 20

// ProcessorCache bounds the values the processor's storage keeps in
// memory after writing them, over all its partitions (see valueCache):
// about 80,000 customer states of 800 bytes. A view keeps none: its
// lookups are spread over every customer.
const ProcessorCache = 64 << 20

// bloomBitsPerKey sizes the bloom filter of each table file: a lookup of
// an id that is not stored (a new customer, a 404) then skips the block
// reads, for about 1.25 MB of filter per million keys.
const bloomBitsPerKey = 10

// options are the leveldb options of both storages. goleveldb's defaults
// are made for one database per process; here every partition of the
// processor and of the view has its own, twelve with six partitions, so
// their memory adds up. The settings below were measured with a million
// customers (BENCHMARKS.md): with goleveldb's compaction defaults, 4–8
// MiB write buffers and a 32 MiB write budget, serve peaked at 603 MB and
// was ready in 19 s; with these and an 8 MiB budget, at 264 MB and 16 s.
//   - Small write buffers: each partition has two memtables of this size
//     (one being written, one being flushed).
//   - Larger tables and later level-0 compactions: recovering a table
//     writes every key once, in random order, and the default 2 MiB tables
//     with a level-0 trigger of 4 spent two thirds of the CPU compacting.
//     The bloom filters keep reads cheap across the extra level-0 tables.
//   - 16 KiB blocks: a restore took 19.5 s instead of 24.6 s with 4 KiB,
//     measured when goleveldb still wrote each block with its own
//     write(2) (table files are buffered now, see openLevelDB); 4 KiB
//     blocks showed no clear gain for lookups since.
//   - No block compression: the JSON values are read on every lookup, and
//     snappy was a tenth of the fold's CPU.
func options() *opt.Options {
	return &opt.Options{
		Compression:            opt.NoCompression,
		Filter:                 filter.NewBloomFilter(bloomBitsPerKey),
		WriteBuffer:            2 * opt.MiB,
		BlockCacheCapacity:     2 * opt.MiB,
		BlockSize:              16 * opt.KiB,
		CompactionTableSize:    16 * opt.MiB,
		CompactionTotalSize:    128 * opt.MiB,
		CompactionL0Trigger:    16,
		WriteL0SlowdownTrigger: 32,
		WriteL0PauseTrigger:    48,
		OpenFilesCacheCapacity: 64,
	}
}

// Processor is for the processor's copy of its partitions, kept across
// restarts. The processor writes to it only table records that Kafka
// acknowledged, each batch with the offset of its last one (see the
// processor's checkpointed storage), so the copy is always a prefix of the
// table topic, and after a restart goka reads the table from that offset
// on.
//
// Unlike a view's, every batch is synced before the write returns: without
// it, a machine that loses power can leave a journal whose middle batch is
// lost while a later one, with a later offset, is replayed (goleveldb drops
// a damaged journal block and reads on), and the copy would miss records
// before its offset for good. With it only the last batch can be lost, and
// the one before it is a consistent older checkpoint. Corrupted files are
// handled as for View.
func Processor(dir string, buffer int, onCorrupt func(path string, err error)) storage.Builder {
	return batchedBuilder(dir, buffer, ProcessorCache, options(), &opt.WriteOptions{Sync: true}, onCorrupt)
}

// View is for a view's replica of the table, kept across restarts.
//
// Writes are batched as for Scratch. That is safe here too, because each
// batch carries the partition offset of its last write: after a crash the
// replica holds the values of the last batch and the offset to resume
// after it, and the records past it are read again from the table topic.
//
// The replica is a copy of the table topic, so a partition whose files
// are corrupted (a power loss, a full disk) is not worth failing for:
// onCorrupt is told, and the partition starts empty and is recovered from
// the topic. A nil onCorrupt fails the open instead.
func View(dir string, buffer int, onCorrupt func(path string, err error)) storage.Builder {
	return batchedBuilder(dir, buffer, 0, options(), nil, onCorrupt)
}
