package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// Record is one record read back from a topic.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	// Headers are the record's headers, nil when it has none: a
	// binary-mode event's attributes are there.
	Headers map[string][]byte
	// HeaderList is the same headers in their order, repeats included,
	// for a record to be produced again as it was.
	HeaderList []*sarama.RecordHeader
}

// ErrOffsetGone is returned when a wanted offset is no longer in the log.
var ErrOffsetGone = errors.New("offset no longer in the log")

// OffsetReader reads individual records of a partition by offset. It asks
// the partition leader for the batch holding each wanted offset, so the
// cost follows the number of wanted records, not the partition's size.
type OffsetReader struct {
	client sarama.Client
	topic  string
	// MaxBytes bounds one fetch response.
	maxBytes int32
}

// NewOffsetReader connects a reader of topic, for the history of the
// events topic.
func NewOffsetReader(cfg Config, topic string) (*OffsetReader, error) {
	return newOffsetReader(cfg, topic, "history", cfg.Sarama())
}

// NewDeadLetterReader connects a reader of the dead-letter topic, for the
// web page: one client for the life of the service, not one per request.
func NewDeadLetterReader(cfg Config, topic string) (*OffsetReader, error) {
	sc := cfg.Sarama()
	// The page's reads give up after 5 s; a dial to a broker that does
	// not answer should not hold them for sarama's default 30 s.
	sc.Net.DialTimeout = 5 * time.Second
	return newOffsetReader(cfg, topic, "ui", sc)
}

func newOffsetReader(cfg Config, topic, purpose string, sc *sarama.Config) (*OffsetReader, error) {
	sc.ClientID = cfg.ClientID + "-" + purpose
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to connect %s reader: %w", purpose, err)
	}
	return &OffsetReader{client: client, topic: topic, maxBytes: 256 << 10}, nil
}

// Topic is the topic the reader reads.
func (r *OffsetReader) Topic() string { return r.topic }

// Close releases the reader's connections.
func (r *OffsetReader) Close() error { return r.client.Close() }

// Each calls fn with the record at each of the given offsets of one
// partition, in offset order, one fetch response at a time, so that
// reading many records holds no more than one response (maxBytes, or one
// batch when a batch is larger). A record's Key and Value point into
// that response: fn must copy what it keeps. An error of fn stops the
// reading and is returned as it is.
func (r *OffsetReader) Each(ctx context.Context, partition int32, offsets []int64, fn func(Record) error) error {
	want := slices.Clone(offsets)
	slices.Sort(want)
	want = slices.Compact(want)
	for len(want) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		got, _, err := r.fetch(partition, want[0])
		if err != nil {
			return err
		}
		i := 0
		for _, rec := range got {
			if i < len(want) && want[i] < rec.Offset {
				if i == 0 {
					// The first wanted offset is not in the batch that
					// should hold it: it was deleted or compacted away.
					return fmt.Errorf("%w: %s/%d@%d", ErrOffsetGone, r.topic, partition, want[0])
				}
				break
			}
			if i < len(want) && want[i] == rec.Offset {
				if err := fn(rec); err != nil {
					return err
				}
				i++
			}
		}
		if i == 0 {
			return fmt.Errorf("%w: %s/%d@%d", ErrOffsetGone, r.topic, partition, want[0])
		}
		want = want[i:]
	}
	return nil
}

// Range calls fn with each record of one partition from offset from up
// to, but not including, until, in offset order, one fetch response at a
// time; offsets without a record (transaction markers, compaction) are
// skipped. Records point into the response as with Each.
func (r *OffsetReader) Range(ctx context.Context, partition int32, from, until int64, fn func(Record) error) error {
	for from < until {
		if err := ctx.Err(); err != nil {
			return err
		}
		got, next, err := r.fetch(partition, from)
		if err != nil {
			return err
		}
		for _, rec := range got {
			if rec.Offset < from || rec.Offset >= until {
				continue // a batch starts before from, or goes past until
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		if next <= from {
			return nil // the end of the partition
		}
		from = next
	}
	return nil
}

// PartitionBounds are a partition's first offset and high-water mark.
type PartitionBounds struct {
	Partition      int32
	Oldest, Newest int64
}

// Bounds returns the first offset and high-water mark of each partition
// of the topic, none when the topic does not exist (yet).
func (r *OffsetReader) Bounds() ([]PartitionBounds, error) {
	partitions, err := r.client.Partitions(r.topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list partitions of %s: %w", r.topic, err)
	}
	out := make([]PartitionBounds, 0, len(partitions))
	for _, p := range partitions {
		b := PartitionBounds{Partition: p}
		if b.Oldest, err = r.client.GetOffset(r.topic, p, sarama.OffsetOldest); err != nil {
			return nil, fmt.Errorf("failed to read the first offset of %s/%d: %w", r.topic, p, err)
		}
		if b.Newest, err = r.client.GetOffset(r.topic, p, sarama.OffsetNewest); err != nil {
			return nil, fmt.Errorf("failed to read the high-water mark of %s/%d: %w", r.topic, p, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// fetch asks the leader for records from offset on, up to maxBytes. next
// is the offset after the last batch of the response.
func (r *OffsetReader) fetch(partition int32, offset int64) (recs []Record, next int64, err error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		recs, next, err := r.fetchOnce(partition, offset)
		if err == nil || errors.Is(err, ErrOffsetGone) {
			return recs, next, err
		}
		lastErr = err
		// The leader may have moved: refresh metadata and retry.
		_ = r.client.RefreshMetadata(r.topic) // the retry reports the real error
	}
	return nil, 0, lastErr
}

func (r *OffsetReader) fetchOnce(partition int32, offset int64) ([]Record, int64, error) {
	leader, err := r.client.Leader(r.topic, partition)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to find leader of %s/%d: %w", r.topic, partition, err)
	}
	req := &sarama.FetchRequest{Version: 10, MaxWaitTime: 0, MinBytes: 1, MaxBytes: r.maxBytes, Isolation: sarama.ReadUncommitted}
	req.AddBlock(r.topic, partition, offset, r.maxBytes, -1)
	resp, err := leader.Fetch(req)
	if err != nil {
		return nil, 0, fmt.Errorf("failed to fetch %s/%d@%d: %w", r.topic, partition, offset, err)
	}
	block := resp.GetBlock(r.topic, partition)
	if block == nil {
		return nil, 0, fmt.Errorf("failed to fetch %s/%d@%d: no data in response", r.topic, partition, offset)
	}
	switch {
	case errors.Is(block.Err, sarama.ErrOffsetOutOfRange):
		return nil, 0, fmt.Errorf("%w: %s/%d@%d", ErrOffsetGone, r.topic, partition, offset)
	case block.Err != sarama.ErrNoError:
		return nil, 0, fmt.Errorf("failed to fetch %s/%d@%d: %w", r.topic, partition, offset, block.Err)
	}
	var out []Record
	next := offset
	for _, set := range block.RecordsSet {
		if set.RecordBatch == nil {
			continue
		}
		b := set.RecordBatch
		if b.PartialTrailingRecord {
			continue // cut by the response's size: fetched again from next
		}
		next = max(next, b.FirstOffset+int64(b.LastOffsetDelta)+1)
		if b.Control {
			continue
		}
		ts := func(rec *sarama.Record) time.Time { return b.FirstTimestamp.Add(rec.TimestampDelta) }
		if b.LogAppendTime {
			ts = func(*sarama.Record) time.Time { return b.MaxTimestamp }
		}
		for _, rec := range b.Records {
			if rec == nil {
				continue
			}
			var headers map[string][]byte
			for _, h := range rec.Headers {
				if headers == nil {
					headers = make(map[string][]byte, len(rec.Headers))
				}
				headers[string(h.Key)] = h.Value
			}
			out = append(out, Record{
				Partition:  partition,
				Offset:     b.FirstOffset + rec.OffsetDelta,
				Key:        rec.Key,
				Value:      rec.Value,
				Timestamp:  ts(rec),
				Headers:    headers,
				HeaderList: rec.Headers,
			})
		}
	}
	return out, next, nil
}
