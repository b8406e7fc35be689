package service

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/sync/singleflight"

	"github.com/eventfold/eventfold/internal/kafka"
)

// lagOffsetsTTL is how long an end offset or a group's commits read for
// ?max_lag= answer further checks. Without it every such read cost one or
// two broker requests, so a client could multiply the broker's load by
// its request rate. A cached end offset can be short of the partition's
// end by the records written in the last TTL, so a lag read with it can
// be that much too small: 200 ms of writes of one partition is a small
// slack beside max_lag bounds of whole records, and it caps the broker
// requests of every ?max_lag= read together at a few per partition a
// second, whatever their rate. A cached commit is older than the group's
// newest, which only makes the lag look larger, never smaller.
const lagOffsetsTTL = 200 * time.Millisecond

// lagOffsetsTimeout bounds one shared read from Kafka: it runs for every
// reader that waits for it, so it is not cancelled with the first of them.
const lagOffsetsTimeout = 2 * time.Second

// offsetCache reads the offsets ?max_lag= checks need from Kafka, at most
// once per key and TTL: concurrent checks share one read (single-flight),
// and a read answers every check of the TTL that follows it.
type offsetCache struct {
	offsets *kafka.Offsets
	ttl     time.Duration
	flight  singleflight.Group
	mu      sync.Mutex
	entries map[string]cachedOffsets
}

type cachedOffsets struct {
	at    time.Time
	value any // int64 for an end offset, map[int32]int64 for commits
}

func newOffsetCache(offsets *kafka.Offsets, ttl time.Duration) *offsetCache {
	return &offsetCache{offsets: offsets, ttl: ttl, entries: map[string]cachedOffsets{}}
}

// End returns the newest offset of a partition, at most the TTL old.
func (c *offsetCache) End(ctx context.Context, topic string, partition int32) (int64, error) {
	return cached(ctx, c, "end/"+topic+"/"+strconv.Itoa(int(partition)), func(ctx context.Context) (int64, error) {
		return c.offsets.Offset(ctx, topic, partition, sarama.OffsetNewest)
	})
}

// Committed returns the group's committed offsets on topic, at most the
// TTL old.
func (c *offsetCache) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	return cached(ctx, c, "committed/"+group+"/"+topic, func(context.Context) (map[int32]int64, error) {
		return c.offsets.Committed(group, topic)
	})
}

// cached returns key's value when read less than the TTL ago, or reads it
// with fetch, once for every caller that asks meanwhile. The keys are
// the table's and events' partitions and one group: the map is bounded
// by the topics' partitions.
func cached[T any](ctx context.Context, c *offsetCache, key string, fetch func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.value.(T), nil
	}
	ch := c.flight.DoChan(key, func() (any, error) {
		// Detached from the first caller: the others wait for it too.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lagOffsetsTimeout)
		defer cancel()
		start := time.Now()
		v, err := fetch(fctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.entries[key] = cachedOffsets{at: start, value: v}
		c.mu.Unlock()
		return v, nil
	})
	var zero T
	select {
	case <-ctx.Done():
		return zero, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return zero, res.Err
		}
		return res.Val.(T), nil
	}
}
