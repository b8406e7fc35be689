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

// NewOffsetReader connects a reader of topic.
func NewOffsetReader(cfg Config, topic string) (*OffsetReader, error) {
	sc := cfg.Sarama()
	sc.ClientID = cfg.ClientID + "-history"
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to connect history reader: %w", err)
	}
	return &OffsetReader{client: client, topic: topic, maxBytes: 256 << 10}, nil
}

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
		got, err := r.fetch(partition, want[0])
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

// fetch asks the leader for records from offset on, up to maxBytes.
func (r *OffsetReader) fetch(partition int32, offset int64) ([]Record, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		recs, err := r.fetchOnce(partition, offset)
		if err == nil || errors.Is(err, ErrOffsetGone) {
			return recs, err
		}
		lastErr = err
		// The leader may have moved: refresh metadata and retry.
		_ = r.client.RefreshMetadata(r.topic) // the retry reports the real error
	}
	return nil, lastErr
}

func (r *OffsetReader) fetchOnce(partition int32, offset int64) ([]Record, error) {
	leader, err := r.client.Leader(r.topic, partition)
	if err != nil {
		return nil, fmt.Errorf("failed to find leader of %s/%d: %w", r.topic, partition, err)
	}
	req := &sarama.FetchRequest{Version: 10, MaxWaitTime: 0, MinBytes: 1, MaxBytes: r.maxBytes, Isolation: sarama.ReadUncommitted}
	req.AddBlock(r.topic, partition, offset, r.maxBytes, -1)
	resp, err := leader.Fetch(req)
	if err != nil {
		return nil, fmt.Errorf("failed to fetch %s/%d@%d: %w", r.topic, partition, offset, err)
	}
	block := resp.GetBlock(r.topic, partition)
	if block == nil {
		return nil, fmt.Errorf("failed to fetch %s/%d@%d: no data in response", r.topic, partition, offset)
	}
	switch {
	case errors.Is(block.Err, sarama.ErrOffsetOutOfRange):
		return nil, fmt.Errorf("%w: %s/%d@%d", ErrOffsetGone, r.topic, partition, offset)
	case block.Err != sarama.ErrNoError:
		return nil, fmt.Errorf("failed to fetch %s/%d@%d: %w", r.topic, partition, offset, block.Err)
	}
	var out []Record
	for _, set := range block.RecordsSet {
		if set.RecordBatch == nil || set.RecordBatch.Control {
			continue
		}
		b := set.RecordBatch
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
				Partition: partition,
				Offset:    b.FirstOffset + rec.OffsetDelta,
				Key:       rec.Key,
				Value:     rec.Value,
				Timestamp: b.FirstTimestamp.Add(rec.TimestampDelta),
				Headers:   headers,
			})
		}
	}
	return out, nil
}
