package store

import (
	"cmp"
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
		b := &batched{Storage: inner, db: db, closeFiles: closeFiles, pending: map[string][]byte{}, budget: budget, open: open, wo: wo,
			cache: valueCache{budget: cache, open: open}}
		b.written.L = &b.mu
		return b, nil
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
//
// A batch is written in the background while the next one fills: a write
// with its fsync takes milliseconds, and holding the partition's lock for
// it stalled every read of the partition and, through the processor's
// commit order, the fold (a mutex profile of the fold had its callbacks
// waiting 49 s in 37 s). One batch is written at a time, so batches reach
// leveldb in order. Memory: a batch is a third of the partition's share;
// while one is written the next may grow to two thirds, and a writer
// that would pass that waits, so the pending writes and the batch being
// written stay within the share.
type batched struct {
	storage.Storage
	db         *leveldb.DB
	closeFiles func() error // after the database is closed
	budget     int
	open       *atomic.Int64 // partitions open with the same builder
	wo         *opt.WriteOptions

	mu           sync.Mutex
	written      sync.Cond         // signalled when a batch was written
	pending      map[string][]byte // a nil value is a pending delete
	pendingBytes int
	offset       *int64
	writing      map[string][]byte // the batch being written, read-only
	writingAt    *int64            // the offset that batch ends with
	writingNow   bool
	writeErr     error // the first batch that failed, for good
	closed       bool
	cache        valueCache
	flushes      uint64 // batches written, to tell a read that raced one
	recovered    bool   // MarkRecovered was called: the cache keeps values
}

func (b *batched) Has(key string) (bool, error) {
	v, err := b.Get(key)
	return v != nil, err
}

// Get reads the pending writes, then the batch being written, then the
// values kept after their batch, then leveldb; a value read from leveldb
// is kept unless a batch was written while it was read (it may be older
// than that batch's).
func (b *batched) Get(key string) ([]byte, error) {
	b.mu.Lock()
	v, ok := b.pending[key]
	if !ok {
		v, ok = b.writing[key]
	}
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
		_, written := b.pending[key]
		_, writing := b.writing[key]
		if !written && !writing {
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
	if b.writeErr != nil {
		return b.writeErr
	}
	if old, ok := b.pending[key]; ok {
		b.pendingBytes -= len(old)
	} else {
		b.pendingBytes += len(key) + entryOverhead
	}
	b.pending[key] = value
	b.pendingBytes += len(value)
	b.cache.remove(key)
	// A batch waits for the offset of its last write (SetOffset), so
	// that it ends with it. A caller that never sets one is bounded too:
	// its values are written without an offset, which a later batch
	// brings.
	if b.pendingBytes >= b.share() {
		return b.startWriteLocked(true, false)
	}
	return nil
}

// share is this partition's part of the builder's budget.
func (b *batched) share() int { return b.budget / int(max(1, b.open.Load())) }

// SetOffset keeps the offset with the pending writes it belongs to.
func (b *batched) SetOffset(offset int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.writeErr != nil {
		return b.writeErr
	}
	b.offset = &offset
	if share := b.share(); b.pendingBytes >= share/3 {
		return b.startWriteLocked(b.pendingBytes >= share*2/3, true)
	}
	return nil
}

func (b *batched) GetOffset(def int64) (int64, error) {
	b.mu.Lock()
	o := cmp.Or(b.offset, b.writingAt)
	b.mu.Unlock()
	if o != nil {
		return *o, nil
	}
	// The inner storage remembers the offset of the last batch written.
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

// flush writes every pending write and returns once leveldb has them.
func (b *batched) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.startWriteLocked(true, true); err != nil {
		return err
	}
	return b.awaitWriteLocked()
}

// awaitWriteLocked waits for the batch being written, if any.
func (b *batched) awaitWriteLocked() error {
	for b.writingNow {
		b.written.Wait()
	}
	return b.writeErr
}

// startWriteLocked hands the pending writes to a background write, with
// the offset last set if withOffset. If a batch is being written, it
// waits for it when wait is set and otherwise leaves the pending writes
// for the next batch.
func (b *batched) startWriteLocked(wait, withOffset bool) error {
	if b.writingNow {
		if !wait {
			return nil
		}
		if err := b.awaitWriteLocked(); err != nil {
			return err
		}
	}
	if b.writeErr != nil {
		return b.writeErr
	}
	if len(b.pending) == 0 && (b.offset == nil || !withOffset) {
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
	var offset *int64
	if withOffset {
		offset, b.offset = b.offset, nil
	}
	if offset != nil {
		batch.Put([]byte(offsetKey), []byte(strconv.FormatInt(*offset, 10)))
	}
	b.writing, b.writingAt, b.writingNow = b.pending, offset, true
	b.pending = make(map[string][]byte, len(b.pending))
	b.pendingBytes = 0
	go b.write(batch)
	return nil
}

// write writes one batch and then keeps its values in the cache.
func (b *batched) write(batch *leveldb.Batch) {
	err := b.db.Write(batch, b.wo)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && b.writeErr == nil {
		b.writeErr = fmt.Errorf("failed to write a batch to leveldb: %w", err)
	}
	// The inner storage also remembers the offset it was last given; not
	// before the batch is written: once recovered it writes it to leveldb.
	if err == nil && b.writingAt != nil {
		if err := b.Storage.SetOffset(*b.writingAt); err != nil && b.writeErr == nil {
			b.writeErr = err
		}
	}
	b.flushes++
	// Recovery writes every key of the partition once; keeping them would
	// only raise the restore's peak memory (by twice the cache, with the
	// collector's headroom), for reads that may never come.
	if err == nil && b.recovered {
		for k, v := range b.writing {
			if _, newer := b.pending[k]; v != nil && !newer {
				b.cache.put(k, v)
			}
		}
	}
	b.writing, b.writingAt, b.writingNow = nil, nil, false
	b.written.Broadcast()
	// The writes that piled up meanwhile go next, if they are a batch.
	if b.writeErr == nil && b.pendingBytes >= b.share()/3 && b.offset != nil {
		_ = b.startWriteLocked(false, true)
	}
}
