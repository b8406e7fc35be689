package crash

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is one record of a topic and where it sits in the log.
type Record struct {
	Partition int32
	Offset    int64
	Key       string
	Value     []byte // nil for a tombstone
	Timestamp time.Time
}

// Log holds a topic's records by partition, each partition in offset order.
type Log map[int32][]Record

// Len is the number of records in the log.
func (l Log) Len() int {
	n := 0
	for _, records := range l {
		n += len(records)
	}
	return n
}

// ReadTopic reads every record of topic below the end offsets it has when
// the call starts. Records produced later are not waited for, so the
// caller stops its producers first.
func ReadTopic(ctx context.Context, brokers []string, topic string) (Log, error) {
	admClient, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("failed to create admin client: %w", err)
	}
	defer admClient.Close()
	adm := kadm.NewClient(admClient)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list end offsets of %s: %w", topic, err)
	}
	out := Log{}
	end := map[int32]int64{}
	assign := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = nil
		start, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > start.Offset {
			end[o.Partition] = o.Offset
			assign[o.Partition] = kgo.NewOffset().At(start.Offset)
		}
	})
	if len(assign) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
	if err != nil {
		return nil, fmt.Errorf("failed to create consumer of %s: %w", topic, err)
	}
	defer cl.Close()
	// A partition is read once a record at or past its last offset was
	// seen. Compaction leaves gaps, but never removes a partition's last
	// record, which sits in the active segment.
	for len(end) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("failed to read %s: %d partitions unfinished: %w", topic, len(end), err)
		}
		var fetchErr error
		fetches.EachError(func(_ string, p int32, err error) {
			fetchErr = errors.Join(fetchErr, fmt.Errorf("partition %d: %w", p, err))
		})
		if fetchErr != nil {
			return nil, fmt.Errorf("failed to read %s: %w", topic, fetchErr)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			last, reading := end[r.Partition]
			if !reading || r.Offset >= last {
				return
			}
			out[r.Partition] = append(out[r.Partition], Record{Partition: r.Partition, Offset: r.Offset,
				Key: string(r.Key), Value: r.Value, Timestamp: r.Timestamp})
			if r.Offset == last-1 {
				delete(end, r.Partition)
			}
		})
	}
	return out, nil
}
