package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// entryOverhead approximates what a pending entry costs beyond its key
// and value: the map slot and the string and slice headers.
const entryOverhead = 64

// offsetKey is where goka's leveldb storage keeps the partition offset.
const offsetKey = "__offset"

// batchedBuilder opens leveldb partitions whose writes are buffered and
// written in batches. goka writes each table value and then its offset
// with a Put each, and every Put is a journal write(2): a third of the
// fold's CPU in its profile. Buffering also collapses the writes of a key
// that is written again before the flush, and lets the processor read its
// latest states from memory.
//
// budget bounds the bytes pending in all the partitions the builder has
// open; each partition flushes when it holds its equal share.
//
// wo are the options of every batch written, nil for leveldb's defaults.
//
// cache bounds the bytes of written or read values kept in memory after
// their batch is written, over all the partitions open (see valueCache);
// 0 keeps none.
//
// onCorrupt, if not nil, lets a partition whose files are corrupted start
// empty: it is called, the files are removed, and the partition is
// recovered from the table topic like a new one.
func batchedBuilder(dir string, budget, cache int, opts *opt.Options, wo *opt.WriteOptions, onCorrupt func(path string, err error)) storage.Builder {
	open := new(atomic.Int64)
	return func(topic string, partition int32) (storage.Storage, error) {
		path := filepath.Join(dir, fmt.Sprintf("%s.%d", topic, partition))
		db, closeFiles, err := openLevelDB(path, opts)
		if errors.Is(err, ErrCorrupted) && onCorrupt != nil {
			onCorrupt(path, err)
			if rerr := os.RemoveAll(path); rerr != nil {
				return nil, errors.Join(err, fmt.Errorf("failed to remove corrupted storage: %w", rerr))
			}
			db, closeFiles, err = openLevelDB(path, opts)
		}
		if err != nil {
			return nil, err
		}
		inner, err := storage.New(db)
		if err != nil {
			return nil, errors.Join(err, db.Close(), closeFiles())
		}
		open.Add(1)
		return &batched{Storage: inner, db: db, closeFiles: closeFiles, pending: map[string][]byte{}, budget: budget, open: open, wo: wo,
			cache: valueCache{budget: cache, open: open}}, nil
	}
}

// batched is a goka storage whose sets, deletes and offsets are held in
// memory until its share of the budget is pending, then written in one
// leveldb batch. Reads see pending writes first.
//
// The offset is written in the same batch as the values it follows. A
// view sets each value and then its offset, so its leveldb always holds a
// consistent prefix of the partition: after a crash the records past it
// are read again from the table topic. The processor sets offsets from
// the table writes Kafka acknowledged, in order (see Processor).
type batched struct {
	storage.Storage
	db         *leveldb.DB
	closeFiles func() error // after the database is closed
	budget     int
	open       *atomic.Int64 // partitions open with the same builder
	wo         *opt.WriteOptions

	mu           sync.Mutex
	pending      map[string][]byte // a nil value is a pending delete
	pendingBytes int
	offset       *int64
	closed       bool
	cache        valueCache
	flushes      uint64 // batches written, to tell a read that raced one
	recovered    bool   // MarkRecovered was called: the cache keeps values
}

func (b *batched) Has(key string) (bool, error) {
	v, err := b.Get(key)
	return v != nil, err
}

// Get reads the pending writes, then the values kept after their batch,
// then leveldb; a value read from leveldb is kept unless a batch was
// written while it was read (it may be older than that batch's).
func (b *batched) Get(key string) ([]byte, error) {
	b.mu.Lock()
	v, ok := b.pending[key]
	if !ok {
		v, ok = b.cache.get(key)
	}
	flushes := b.flushes
	b.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := b.Storage.Get(key)
	if err != nil || v == nil {
		return v, err
	}
	b.mu.Lock()
	if b.flushes == flushes {
		if _, written := b.pending[key]; !written {
			b.cache.put(key, v)
		}
	}
	b.mu.Unlock()
	return v, nil
}

func (b *batched) Set(key string, value []byte) error {
	if value == nil {
		return fmt.Errorf("cannot write nil value for %s", key)
	}
	return b.put(key, append([]byte(nil), value...))
}

func (b *batched) Delete(key string) error { return b.put(key, nil) }

func (b *batched) put(key string, value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.pending[key]; ok {
		b.pendingBytes -= len(old)
	} else {
		b.pendingBytes += len(key) + entryOverhead
	}
	b.pending[key] = value
	b.pendingBytes += len(value)
	b.cache.remove(key)
	// The flush waits for the offset of this write (SetOffset), so that a
	// batch ends with its offset; twice the share bounds the memory of a
	// caller that never sets one.
	if b.pendingBytes >= 2*b.share() {
		return b.flushLocked()
	}
	return nil
}

// share is this partition's part of the builder's budget.
func (b *batched) share() int { return b.budget / int(max(1, b.open.Load())) }

// SetOffset keeps the offset with the pending writes it belongs to.
func (b *batched) SetOffset(offset int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.offset = &offset
	if b.pendingBytes >= b.share() {
		return b.flushLocked()
	}
	return nil
}

func (b *batched) GetOffset(def int64) (int64, error) {
	b.mu.Lock()
	o := b.offset
	b.mu.Unlock()
	if o != nil {
		return *o, nil
	}
	return b.Storage.GetOffset(def)
}

func (b *batched) MarkRecovered() error {
	if err := b.flush(); err != nil {
		return err
	}
	b.mu.Lock()
	b.recovered = true
	b.mu.Unlock()
	return b.Storage.MarkRecovered()
}

func (b *batched) Iterator() (storage.Iterator, error) {
	if err := b.flush(); err != nil {
		return nil, err
	}
	return b.Storage.Iterator()
}

func (b *batched) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	if err := b.flush(); err != nil {
		return nil, err
	}
	return b.Storage.IteratorWithRange(start, limit)
}

func (b *batched) Close() error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		b.open.Add(-1)
		b.cache.clear()
	}
	b.mu.Unlock()
	if err := b.flush(); err != nil {
		return errors.Join(err, b.Storage.Close(), b.closeFiles())
	}
	return errors.Join(b.Storage.Close(), b.closeFiles())
}

func (b *batched) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *batched) flushLocked() error {
	if len(b.pending) == 0 && b.offset == nil {
		return nil
	}
	batch := new(leveldb.Batch)
	for k, v := range b.pending {
		if v == nil {
			batch.Delete([]byte(k))
		} else {
			batch.Put([]byte(k), v)
		}
	}
	if b.offset != nil {
		batch.Put([]byte(offsetKey), []byte(strconv.FormatInt(*b.offset, 10)))
	}
	if err := b.db.Write(batch, b.wo); err != nil {
		return fmt.Errorf("failed to write a batch to leveldb: %w", err)
	}
	b.flushes++
	// Recovery writes every key of the partition once; keeping them would
	// only raise the restore's peak memory (by twice the cache, with the
	// collector's headroom), for reads that may never come.
	for k, v := range b.pending {
		if v != nil && b.recovered {
			b.cache.put(k, v)
		}
	}
	b.pending = make(map[string][]byte, len(b.pending))
	b.pendingBytes = 0
	// The inner storage also remembers the offset it was last given.
	if b.offset != nil {
		if err := b.Storage.SetOffset(*b.offset); err != nil {
			return err
		}
		b.offset = nil
	}
	return nil
}
