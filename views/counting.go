package views

import (
	"fmt"
	"sync/atomic"

	"github.com/lovoo/goka/storage"
)

// countingBuilder wraps a storage builder so that the view knows how many
// keys it holds without iterating them at scrape time: each partition
// counts its keys once when opened, then tracks sets and deletes.
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
	keys    *atomic.Int64
	counted int64 // keys this partition holds, as added to keys
}

// Open counts the keys already stored, e.g. by a previous run.
func (s *countingStorage) Open() error {
	if err := s.Storage.Open(); err != nil {
		return err
	}
	it, err := s.Storage.Iterator()
	if err != nil {
		return fmt.Errorf("failed to count stored keys: %w", err)
	}
	defer it.Release()
	var n int64
	for it.Next() {
		n++
	}
	s.counted = n
	s.keys.Add(n)
	return it.Err()
}

func (s *countingStorage) Set(key string, value []byte) error {
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
