package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/kafka"
)

// Throughput is a count of records over a time.
type Throughput struct {
	Records int64   `json:"records"`
	Bytes   int64   `json:"bytes,omitempty"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_second"`
	// CPUSeconds is the bench process' CPU time over a fold of the
	// rounds (eventfold, bare goka), whose systems run in the process one
	// at a time: on a loaded machine it is steadier than the rate.
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
}

// PerCPUSecond is the records per CPU-second, 0 without CPUSeconds.
func (t Throughput) PerCPUSecond() float64 {
	if t.CPUSeconds <= 0 {
		return 0
	}
	return float64(t.Records) / t.CPUSeconds
}

func throughput(records, bytes int64, elapsed time.Duration) Throughput {
	// A floor keeps a tiny run from dividing by a clock tick.
	elapsed = max(elapsed, time.Millisecond)
	return Throughput{Records: records, Bytes: bytes, Seconds: elapsed.Seconds(), PerSec: float64(records) / elapsed.Seconds()}
}

// consumeKgo reads topic from its start to the given high-water marks
// with a bare kgo client: no group, no decoding, only counting. It is the
// client's limit on this broker and machine, timed from the client's
// creation to the last record.
func consumeKgo(ctx context.Context, brokers []string, topic string, hwms map[int32]int64) (Throughput, error) {
	start := time.Now()
	partitions := map[int32]kgo.Offset{}
	remaining := 0
	for p, hwm := range hwms {
		if hwm > 0 {
			partitions[p] = kgo.NewOffset().AtStart()
			remaining++
		}
	}
	if remaining == 0 {
		return throughput(0, 0, time.Since(start)), nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("eventfold-bench-consumer"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: partitions}))
	if err != nil {
		return Throughput{}, fmt.Errorf("failed to create kgo consumer: %w", err)
	}
	defer cl.Close()
	var records, bytes int64
	for remaining > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return Throughput{}, fmt.Errorf("failed to read %s to its end: %w", topic, err)
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) { fetchErr = fmt.Errorf("failed to fetch %s/%d: %w", t, p, err) })
		if fetchErr != nil {
			return Throughput{}, fetchErr
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			for _, r := range fp.Records {
				records++
				bytes += int64(len(r.Key) + len(r.Value))
			}
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset+1 >= hwms[fp.Partition] {
				if _, ok := partitions[fp.Partition]; ok {
					delete(partitions, fp.Partition)
					remaining--
				}
			}
		})
	}
	return throughput(records, bytes, time.Since(start)), nil
}

// consumeSarama does what consumeKgo does with sarama, the client goka
// is built on: the gap between the two is the client, the gap between
// sarama and the fold is goka and eventfold.
func consumeSarama(ctx context.Context, kc kafka.Config, topic string, hwms map[int32]int64) (Throughput, error) {
	start := time.Now()
	sc := kc.Sarama()
	sc.ClientID = "eventfold-bench-sarama"
	consumer, err := sarama.NewConsumer(kc.Brokers, sc)
	if err != nil {
		return Throughput{}, fmt.Errorf("failed to create sarama consumer: %w", err)
	}
	defer consumer.Close()
	var (
		records, bytes atomic.Int64
		wg             sync.WaitGroup
		errMu          sync.Mutex
		firstErr       error
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	for p, hwm := range hwms {
		if hwm <= 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return Throughput{}, fmt.Errorf("failed to consume %s/%d: %w", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.AsyncClose()
			var n, b int64
			defer func() { records.Add(n); bytes.Add(b) }()
			for {
				select {
				case <-ctx.Done():
					fail(fmt.Errorf("failed to read %s/%d to its end: %w", topic, p, ctx.Err()))
					return
				case err := <-pc.Errors():
					if err != nil {
						fail(fmt.Errorf("failed to consume %s/%d: %w", topic, p, err))
						return
					}
				case m := <-pc.Messages():
					n++
					b += int64(len(m.Key) + len(m.Value))
					if m.Offset+1 >= hwm {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return Throughput{}, firstErr
	}
	return throughput(records.Load(), bytes.Load(), time.Since(start)), nil
}

// baselineRuns is how many times a consumer baseline is read; the
// median is reported. A read takes a second or less, which a noisy
// neighbour can halve, so the reads are spread over the scenario where
// they can be: before and after what they are compared with.
const baselineRuns = 3

// baseline collects the reads of one consumer baseline.
type baseline struct {
	read func() (Throughput, error)
	runs []Throughput
}

// sample reads the baseline n more times.
func (b *baseline) sample(n int) error {
	for range n {
		t, err := b.read()
		if err != nil {
			return err
		}
		b.runs = append(b.runs, t)
	}
	return nil
}

// median returns the read of median rate.
func (b *baseline) median() Throughput {
	runs := slices.Clone(b.runs)
	slices.SortFunc(runs, func(x, y Throughput) int { return cmp.Compare(x.PerSec, y.PerSec) })
	return runs[len(runs)/2]
}

// errIncomplete is returned when a consumer read fewer records than the
// high-water marks promise, which would make its rate a lie.
var errIncomplete = errors.New("read fewer records than written")
