package views

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// tailTable starts kfake with a table topic of two partitions and returns
// the Kafka config and a producer of table records to it.
func tailTable(t testing.TB) (kafka.Config, func(records []tableRecord)) {
	t.Helper()
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 2})
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{broker}
	admin, err := sarama.NewClusterAdmin(kc.Brokers, kc.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(tailTopic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	sc := kc.Sarama()
	sc.Producer.Return.Successes = true
	p, err := sarama.NewAsyncProducer(kc.Brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return kc, func(records []tableRecord) {
		t.Helper()
		go func() {
			for _, r := range records {
				p.Input() <- &sarama.ProducerMessage{Topic: tailTopic, Key: sarama.StringEncoder(r.key), Value: sarama.ByteEncoder(r.value)}
			}
		}()
		for range records {
			select {
			case <-p.Successes():
			case err := <-p.Errors():
				t.Fatal(err)
			}
		}
	}
}

const tailTopic = "customers-table"

type tableRecord struct {
	key   string
	value []byte
}

// tableRecords folds generated events as the processor does and returns
// the table records of the accepted ones, as the processor writes them.
func tableRecords(t testing.TB, n int) []tableRecord {
	t.Helper()
	states := map[string]processor.Customer{}
	var out []tableRecord
	for _, l := range testkit.Generate(7, max(n/5, 1), n) {
		ev, err := processor.Decode(l.Key, l.Value)
		if err != nil {
			t.Fatal(err)
		}
		next, d := processor.Apply(states[l.Key], ev)
		states[l.Key] = next
		if d.Outcome != processor.Accepted {
			continue
		}
		value, err := processor.CustomerCodec{}.Encode(&next)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tableRecord{l.Key, value})
	}
	return out
}

// takeStates takes changes from sub until it has n state events, or
// fails the test after timeout.
func takeStates(t testing.TB, sub *Subscription, n int, timeout time.Duration) []string {
	t.Helper()
	var keys []string
	var changes []*Change
	deadline := time.After(timeout)
	for len(keys) < n {
		select {
		case <-sub.Ready():
		case <-deadline:
			t.Fatalf("%d of %d state events within %s", len(keys), n, timeout)
		}
		var open bool
		if changes, open = sub.Take(changes[:0]); !open {
			t.Fatalf("the subscription ended after %d of %d state events", len(keys), n)
		}
		for _, c := range changes {
			if _, _, ok := c.StateEvent(); ok {
				keys = append(keys, c.Key)
			}
		}
	}
	return keys
}

// TestTailFollowsTheTableOnlyWhileWatched: the tail reads nothing until
// someone subscribes, then every table record written after, and stops
// reading Linger after the last subscriber left; a new subscriber starts
// it again. When its Run ends, its subscriptions end.
func TestTailFollowsTheTableOnlyWhileWatched(t *testing.T) {
	t.Parallel()
	kc, produce := tailTable(t)
	records := tableRecords(t, 60)
	produce(records[:10]) // before anyone watches: not streamed
	tail := NewTail(TailConfig{Kafka: kc, Table: tailTopic, Partitions: 2, Linger: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tail.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	if tail.Following() {
		t.Fatal("the tail follows the table before anyone subscribed")
	}
	subscribe := func() *Subscription {
		t.Helper()
		var sub *Subscription
		var err error
		testkit.Within(t, 10*time.Second, "subscribe to the tail", func() error {
			sub, err = tail.SubscribeAll(ctx)
			return err
		})
		return sub
	}
	sub := subscribe()
	produce(records[10:30])
	got := takeStates(t, sub, 20, 10*time.Second)
	want := map[string]int{}
	for _, r := range records[10:30] {
		want[r.key]++
	}
	for _, k := range got {
		want[k]--
	}
	for k, n := range want {
		if n != 0 {
			t.Errorf("%s: %d state events fewer than written (negative: more)", k, n)
		}
	}
	sub.Close()
	testkit.Within(t, 5*time.Second, "the tail stops following after its linger", func() error {
		if tail.Following() {
			return fmt.Errorf("still following")
		}
		return nil
	})

	sub = subscribe()
	produce(records[30:40])
	takeStates(t, sub, 10, 10*time.Second)
	stop()
	if _, open := sub.Take(nil); open {
		t.Error("a subscription is still open after the tail's Run ended")
	}
	if _, err := tail.SubscribeAll(context.Background()); err == nil {
		t.Error("SubscribeAll after Run ended: no error")
	}
}

// BenchmarkTail measures what following the table for GET /watch costs
// an instance, in CPU time per table record (user and system, of the
// whole process: kfake and the producer run in it too). "produce" writes
// the records with nobody watching; "produce+tail" writes them while a
// subscriber of the tail takes each one's state event, built once as
// for every watcher. The difference is the tail's cost per record.
func BenchmarkTail(b *testing.B) {
	for _, watched := range []bool{false, true} {
		name := "produce"
		if watched {
			name = "produce+tail"
		}
		b.Run(name, func(b *testing.B) {
			kc, produce := tailTable(b)
			records := tableRecords(b, 5000)
			tail := NewTail(TailConfig{Kafka: kc, Table: tailTopic, Partitions: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- tail.Run(ctx) }()
			b.Cleanup(func() { cancel(); <-done })
			var sub *Subscription
			if watched {
				testkit.Within(b, 10*time.Second, "subscribe", func() (err error) {
					sub, err = tail.SubscribeAll(ctx)
					return err
				})
			}
			batch := make([]tableRecord, b.N)
			for i := range batch {
				batch[i] = records[i%len(records)]
			}
			before := cpuTime()
			b.ResetTimer()
			// In chunks well inside the hub's window, so that the
			// subscriber is never dropped for falling behind.
			for chunk := range slices.Chunk(batch, WindowChanges/4) {
				produce(chunk)
				if watched {
					takeStates(b, sub, len(chunk), time.Minute)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-before).Nanoseconds())/float64(b.N), "cpu-ns/record")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
