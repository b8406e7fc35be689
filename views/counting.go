package views

import (
	"fmt"
	"sync/atomic"

	"github.com/lovoo/goka/storage"

	"github.com/eventfold/eventfold/processor"
)

// countingBuilder wraps a storage builder so that the view knows how many
// keys it holds without iterating them at scrape time: each partition
// counts its keys when opened and again once recovered, then tracks sets
// and deletes. During recovery it does not track them: a Has before every
// Set halved the rate at which a view recovers.
//
// It sums the customers' versions the same way: a version counts the
// accepted events of a customer, so the sum is every event ever accepted,
// whatever the process counters say after a restart.
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
	keys      *atomic.Int64
	counted   int64 // keys this partition holds, as added to keys
	versions  *atomic.Int64
	summed    int64 // the sum of this partition's versions, as added to versions
	recovered bool  // set by MarkRecovered, from the partition's goroutine
}

// Open counts the keys already stored, e.g. by a previous run.
func (s *countingStorage) Open() error {
	if err := s.Storage.Open(); err != nil {
		return err
	}
	return s.recount()
}

// MarkRecovered counts the keys again, now that recovery has written
// them without counting.
func (s *countingStorage) MarkRecovered() error {
	if err := s.Storage.MarkRecovered(); err != nil {
		return err
	}
	s.recovered = true
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
	s.keys.Add(n - s.counted)
	s.counted = n
	s.versions.Add(sum - s.summed)
	s.summed = sum
	return nil
}

func (s *countingStorage) Set(key string, value []byte) error {
	if !s.recovered {
		return s.Storage.Set(key, value)
	}
	old, err := s.Storage.Get(key)
	if err != nil {
		return err
	}
	if err := s.Storage.Set(key, value); err != nil {
		return err
	}
	if old == nil {
		s.counted++
		s.keys.Add(1)
	}
	s.addVersions(storedVersion(value) - storedVersion(old))
	return nil
}

func (s *countingStorage) Delete(key string) error {
	if !s.recovered {
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
		s.counted--
		s.keys.Add(-1)
		s.addVersions(-storedVersion(old))
	}
	return nil
}

// Close takes this partition's keys out of the count: a rebuilt view
// opens its partitions again.
func (s *countingStorage) Close() error {
	s.keys.Add(-s.counted)
	s.counted = 0
	s.addVersions(-s.summed)
	return s.Storage.Close()
}

func (s *countingStorage) addVersions(d int64) {
	s.summed += d
	s.versions.Add(d)
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
