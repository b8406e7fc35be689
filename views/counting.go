package views

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/lovoo/goka/storage"

	"github.com/eventfold/eventfold/processor"
)

// countingBuilder wraps a storage builder so that the view knows how many
// keys it holds without iterating them at scrape time.
//
// It sums the customers' versions the same way: a version counts the
// accepted events of a customer, so the sum is every event ever accepted,
// whatever the process counters say after a restart.
//
// A partition opened empty (a first start) is counted once recovered: a
// Get before every Set of a full recovery halved the rate at which a view
// recovers. A partition opened with a kept copy (a restart) is counted in
// the background from a snapshot of what it held at the open, and every
// later Set and Delete, of recovery too, adds the difference it makes to
// that snapshot: the restart reads only the change, and two passes over
// the whole copy (at the open and once recovered) had been most of the
// time a restart took with a million customers (BENCHMARKS.md). Until the
// background count ends, the totals are short of the copy's.
func countingBuilder(inner storage.Builder, keys, versions *atomic.Int64) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		st, err := inner(topic, partition)
		if err != nil {
			return nil, err
		}
		return &countingStorage{Storage: st, keys: keys, versions: versions}, nil
	}
}

type countingStorage struct {
	storage.Storage
	keys     *atomic.Int64
	versions *atomic.Int64

	mu      sync.Mutex
	counted int64 // keys this partition holds, as added to keys
	summed  int64 // the sum of this partition's versions, as added to versions
	// tracking is set once each Set and Delete must add its difference:
	// from the open of a kept copy, or once an empty one is recovered.
	// Only the partition's goroutine writes it.
	tracking bool
	// background is the count of a kept copy, running until it is closed.
	background chan struct{}
	stop       atomic.Bool
}

// Open counts the keys already stored, e.g. by a previous run: in the
// background, from a snapshot.
func (s *countingStorage) Open() error {
	if err := s.Storage.Open(); err != nil {
		return err
	}
	it, err := s.Storage.Iterator()
	if err != nil {
		return fmt.Errorf("failed to count stored keys: %w", err)
	}
	if !it.Next() {
		err := it.Err()
		it.Release()
		if err != nil {
			return fmt.Errorf("failed to count stored keys: %w", err)
		}
		return nil // empty: counted once recovered
	}
	s.tracking = true
	s.background = make(chan struct{})
	go s.countKept(it)
	return nil
}

// countKept counts the snapshot it is positioned at the first key of.
func (s *countingStorage) countKept(it storage.Iterator) {
	defer close(s.background)
	defer it.Release()
	var n, sum int64
	for ok := true; ok; ok = it.Next() {
		if s.stop.Load() {
			return
		}
		value, err := it.Value()
		if err != nil {
			return // the reads of the key report it
		}
		n++
		sum += storedVersion(value)
	}
	if it.Err() != nil {
		return
	}
	s.add(n, sum)
}

// awaitCount waits until the background count of a kept copy has ended.
func (s *countingStorage) awaitCount() {
	if s.background != nil {
		<-s.background
	}
}

// MarkRecovered counts an empty partition's keys, now that recovery has
// written them without counting.
func (s *countingStorage) MarkRecovered() error {
	if err := s.Storage.MarkRecovered(); err != nil {
		return err
	}
	if s.tracking {
		return nil
	}
	s.tracking = true
	return s.recount()
}

func (s *countingStorage) recount() error {
	it, err := s.Storage.Iterator()
	if err != nil {
		return fmt.Errorf("failed to count stored keys: %w", err)
	}
	defer it.Release()
	var n, sum int64
	for it.Next() {
		n++
		value, err := it.Value()
		if err != nil {
			return fmt.Errorf("failed to read a stored value: %w", err)
		}
		sum += storedVersion(value)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("failed to count stored keys: %w", err)
	}
	s.add(n-s.counted, sum-s.summed)
	return nil
}

// add adds to the partition's keys and versions, and to the totals.
func (s *countingStorage) add(keys, versions int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counted += keys
	s.keys.Add(keys)
	s.summed += versions
	s.versions.Add(versions)
}

func (s *countingStorage) Set(key string, value []byte) error {
	if !s.tracking {
		return s.Storage.Set(key, value)
	}
	old, err := s.Storage.Get(key)
	if err != nil {
		return err
	}
	if err := s.Storage.Set(key, value); err != nil {
		return err
	}
	var added int64
	if old == nil {
		added = 1
	}
	s.add(added, storedVersion(value)-storedVersion(old))
	return nil
}

func (s *countingStorage) Delete(key string) error {
	if !s.tracking {
		return s.Storage.Delete(key)
	}
	old, err := s.Storage.Get(key)
	if err != nil {
		return err
	}
	if err := s.Storage.Delete(key); err != nil {
		return err
	}
	if old != nil {
		s.add(-1, -storedVersion(old))
	}
	return nil
}

// Close takes this partition's keys out of the count: a rebuilt view
// opens its partitions again.
func (s *countingStorage) Close() error {
	s.stop.Store(true)
	s.awaitCount() // its iterator must be released before the store closes
	s.mu.Lock()
	s.keys.Add(-s.counted)
	s.versions.Add(-s.summed)
	s.counted, s.summed = 0, 0
	s.mu.Unlock()
	return s.Storage.Close()
}

// storedVersion is the version of a stored table value, 0 for none or
// one that cannot be read (the view's reads report those).
func storedVersion(value []byte) int64 {
	if value == nil {
		return 0
	}
	v, err := processor.StoredVersion(value)
	if err != nil {
		return 0
	}
	return v
}
