package processor

import (
	"errors"
	"sync"

	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// checkpoints keep the processor's local copy of its partitions of the
// table equal to a prefix of the table topic, so that the copy can be kept
// across restarts and partition moves and a restart reads only the table
// records after it.
//
// goka writes a value to the processor's storage before the table write
// is acknowledged, and sets the storage offset from each acknowledgement
// as it comes (goka's context.go), in any order and past a write that
// failed. A copy kept as goka leaves it could therefore hold a write the
// table never got, and the redelivered event would be skipped as already
// decided. So the storage goka sees holds the writes of the running
// processor in memory, in front of the kept copy, and ignores goka's
// offsets; the commit order tells it, in the order of the queue, of each
// table write that Kafka acknowledged after every write before it, and
// only then is the write kept, with its offset as the checkpoint. A write
// that fails stops the processor and the unacknowledged writes are
// dropped with the storage; goka recovers the table from the checkpoint,
// which reads again exactly what the table holds.
type checkpoints struct {
	mu        sync.Mutex
	open      map[topicPartition]*checkpointed
	recovered prometheus.Counter
}

type topicPartition struct {
	topic     string
	partition int32
}

func newCheckpoints(recovered prometheus.Counter) *checkpoints {
	return &checkpoints{open: map[topicPartition]*checkpointed{}, recovered: recovered}
}

// builder wraps the storages inner builds.
func (c *checkpoints) builder(inner storage.Builder) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		st, err := inner(topic, partition)
		if err != nil {
			return nil, err
		}
		s := &checkpointed{Storage: st, tp: topicPartition{topic, partition}, parent: c, unacked: map[string]*unacked{}}
		c.mu.Lock()
		c.open[s.tp] = s
		c.mu.Unlock()
		return s, nil
	}
}

// acknowledged keeps a table write Kafka acknowledged at offset, when
// every write queued before it was acknowledged too. A partition whose
// storage is closed (moved to another instance, or the processor stopped)
// ignores it: its next owner reads it from the table.
func (c *checkpoints) acknowledged(topic string, partition int32, key string, value []byte, offset int64) error {
	c.mu.Lock()
	s := c.open[topicPartition{topic, partition}]
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.acknowledged(key, value, offset)
}

// unacked is a key's latest value written by the running processor, and
// how many of its writes Kafka has not acknowledged yet.
type unacked struct {
	value  []byte // nil for a delete
	writes int
}

// checkpointed is one partition of the processor's table storage: see
// checkpoints. Reads see the unacknowledged writes first. Iterators see
// the acknowledged ones only.
type checkpointed struct {
	storage.Storage
	tp     topicPartition
	parent *checkpoints

	mu        sync.Mutex
	recovered bool // goka recovered the partition and is processing
	offset    int64
	hasOffset bool
	unacked   map[string]*unacked
	closed    bool
}

func (s *checkpointed) Has(key string) (bool, error) {
	s.mu.Lock()
	u, ok := s.unacked[key]
	deleted := ok && u.value == nil
	s.mu.Unlock()
	if ok {
		return !deleted, nil
	}
	return s.Storage.Has(key)
}

func (s *checkpointed) Get(key string) ([]byte, error) {
	// The value is read under the lock: write replaces it while lookups
	// of partitioned serving read it (a value itself is never modified).
	s.mu.Lock()
	u, ok := s.unacked[key]
	var value []byte
	if ok {
		value = u.value
	}
	s.mu.Unlock()
	if ok {
		return value, nil
	}
	return s.Storage.Get(key)
}

// Set stores a record of the table topic while goka recovers the
// partition, and holds the processor's write in memory once it processes.
// The storage below copies what recovery gives it (sarama's fetch
// buffers); a write of the processor is the slice CustomerCodec.Encode
// made for it, which goka also hands the producer and nobody changes, so
// it is held as it is.
func (s *checkpointed) Set(key string, value []byte) error {
	if value == nil {
		return errors.New("cannot write a nil value for " + key)
	}
	return s.write(key, value)
}

func (s *checkpointed) Delete(key string) error { return s.write(key, nil) }

func (s *checkpointed) write(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.recovered {
		if value == nil {
			return s.Storage.Delete(key)
		}
		return s.Storage.Set(key, value)
	}
	u := s.unacked[key]
	if u == nil {
		u = &unacked{}
		s.unacked[key] = u
	}
	u.value = value
	u.writes++
	return nil
}

// SetOffset keeps the offset of a record read from the table topic while
// goka recovers the partition. Once it processes, goka sets the offset of
// each of its writes as Kafka acknowledges it, in any order and past a
// write that failed: those are ignored, and acknowledged sets the
// checkpoint instead.
func (s *checkpointed) SetOffset(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recovered {
		return nil
	}
	s.parent.recovered.Inc()
	s.offset, s.hasOffset = offset, true
	return s.Storage.SetOffset(offset)
}

func (s *checkpointed) MarkRecovered() error {
	if err := s.Storage.MarkRecovered(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasOffset { // nothing was read: the checkpoint kept is current
		offset, err := s.Storage.GetOffset(-1)
		if err != nil {
			return err
		}
		s.offset, s.hasOffset = offset, offset >= 0
	}
	s.recovered = true
	return nil
}

func (s *checkpointed) acknowledged(key string, value []byte, offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	// A write of an earlier owner of the partition, acknowledged late, is
	// older than what this copy recovered: keeping it would undo a newer
	// value.
	if s.hasOffset && offset <= s.offset {
		return nil
	}
	if u := s.unacked[key]; u != nil {
		if u.writes--; u.writes <= 0 {
			delete(s.unacked, key)
		}
	}
	var err error
	if value == nil {
		err = s.Storage.Delete(key)
	} else {
		err = s.Storage.Set(key, value)
	}
	if err != nil {
		return err
	}
	s.offset, s.hasOffset = offset, true
	return s.Storage.SetOffset(offset)
}

// Close drops the writes Kafka has not acknowledged and closes the copy,
// which keeps the acknowledged ones and their checkpoint.
func (s *checkpointed) Close() error {
	s.parent.mu.Lock()
	if s.parent.open[s.tp] == s {
		delete(s.parent.open, s.tp)
	}
	s.parent.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.unacked = map[string]*unacked{}
	s.mu.Unlock()
	return s.Storage.Close()
}
