// Package memstore is an in-memory goka storage backed by a plain map.
//
// goka's own memory storage re-sorts every key on each insert of a new
// key, which makes folding N new customers cost O(N² log N), and its range
// iterator returns nothing for an empty limit. This one inserts in O(1)
// and sorts a snapshot of the keys only when an iterator is asked for.
package memstore

import (
	"bytes"
	"sort"
	"sync"

	"github.com/lovoo/goka/storage"
)

// Builder returns a goka storage builder of in-memory partitions.
func Builder() storage.Builder {
	return func(string, int32) (storage.Storage, error) { return New(), nil }
}

// Store is one in-memory table partition.
type Store struct {
	mu     sync.RWMutex
	values map[string][]byte
	offset *int64
}

// New returns an empty store.
func New() *Store { return &Store{values: map[string][]byte{}} }

// Open implements storage.Storage.
func (s *Store) Open() error { return nil }

// Close implements storage.Storage.
func (s *Store) Close() error { return nil }

// MarkRecovered implements storage.Storage.
func (s *Store) MarkRecovered() error { return nil }

// Has implements storage.Storage.
func (s *Store) Has(key string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.values[key]
	return ok, nil
}

// Get implements storage.Storage; it returns nil for a missing key.
func (s *Store) Get(key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.values[key], nil
}

// Set implements storage.Storage. It keeps a copy: goka hands over slices
// of sarama's fetch buffers, and keeping one would pin the whole batch.
func (s *Store) Set(key string, value []byte) error {
	value = bytes.Clone(value)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = value
	return nil
}

// Delete implements storage.Storage.
func (s *Store) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.values, key)
	return nil
}

// GetOffset implements storage.Storage.
func (s *Store) GetOffset(def int64) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.offset == nil {
		return def, nil
	}
	return *s.offset, nil
}

// SetOffset implements storage.Storage.
func (s *Store) SetOffset(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset = &offset
	return nil
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.values)
}

// Iterator implements storage.Storage: a sorted snapshot of the keys.
func (s *Store) Iterator() (storage.Iterator, error) { return s.IteratorWithRange(nil, nil) }

// IteratorWithRange implements storage.Storage: keys k with
// start <= k < limit in order; a nil or empty limit means no upper bound.
func (s *Store) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	s.mu.RLock()
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
		if bytes.Compare([]byte(k), start) >= 0 && (len(limit) == 0 || bytes.Compare([]byte(k), limit) < 0) {
			keys = append(keys, k)
		}
	}
	s.mu.RUnlock()
	sort.Strings(keys)
	return &iterator{store: s, keys: keys, pos: -1}, nil
}

type iterator struct {
	store *Store
	keys  []string
	pos   int
}

func (it *iterator) Next() bool {
	it.pos++
	return it.pos < len(it.keys)
}

func (it *iterator) Err() error { return nil }

func (it *iterator) Key() []byte {
	if it.pos < 0 || it.pos >= len(it.keys) {
		return nil
	}
	return []byte(it.keys[it.pos])
}

// Value reads the current value of the key, which may be newer than when
// the iterator was made, or nil if it was deleted since.
func (it *iterator) Value() ([]byte, error) {
	if it.pos < 0 || it.pos >= len(it.keys) {
		return nil, nil
	}
	return it.store.Get(it.keys[it.pos])
}

func (it *iterator) Release() { it.keys = nil }

// Seek moves to the first key >= key; Next must then not be called before
// reading it, as with goka's iterators.
func (it *iterator) Seek(key []byte) bool {
	it.pos = sort.SearchStrings(it.keys, string(key))
	return it.pos < len(it.keys)
}
