package views

import (
	"fmt"
	"sync/atomic"

	"github.com/lovoo/goka/storage"
)

// countingBuilder wraps a storage builder so that the view knows how many
// keys it holds without iterating them at scrape time: each partition
// counts its keys when opened and again once recovered, then tracks sets
// and deletes. During recovery it does not track them: a Has before every
// Set halved the rate at which a view recovers.
func countingBuilder(inner storage.Builder, keys *atomic.Int64) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		st, err := inner(topic, partition)
		if err != nil {
			return nil, err
		}
		return &countingStorage{Storage: st, keys: keys}, nil
	}
}

type countingStorage struct {
	storage.Storage
	keys      *atomic.Int64
	counted   int64 // keys this partition holds, as added to keys
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
	var n int64
	for it.Next() {
		n++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("failed to count stored keys: %w", err)
	}
	s.keys.Add(n - s.counted)
	s.counted = n
	return nil
}

func (s *countingStorage) Set(key string, value []byte) error {
	if !s.recovered {
		return s.Storage.Set(key, value)
	}
	had, err := s.Storage.Has(key)
	if err != nil {
		return err
	}
	if err := s.Storage.Set(key, value); err != nil {
		return err
	}
	if !had {
		s.counted++
		s.keys.Add(1)
	}
	return nil
}

func (s *countingStorage) Delete(key string) error {
	if !s.recovered {
		return s.Storage.Delete(key)
	}
	had, err := s.Storage.Has(key)
	if err != nil {
		return err
	}
	if err := s.Storage.Delete(key); err != nil {
		return err
	}
	if had {
		s.counted--
		s.keys.Add(-1)
	}
	return nil
}

// Close takes this partition's keys out of the count: a rebuilt view
// opens its partitions again.
func (s *countingStorage) Close() error {
	s.keys.Add(-s.counted)
	s.counted = 0
	return s.Storage.Close()
}
