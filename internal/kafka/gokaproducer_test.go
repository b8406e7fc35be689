package kafka_test

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
)

// The goka producer holds at most kafka.MaxBufferedBytes of records the
// broker has not acknowledged: with every produce request held by the
// broker, a writer of large states is stopped there, and every write
// completes once the broker answers.
func TestGokaProducerBoundsBufferedBytes(t *testing.T) {
	t.Parallel()
	broker, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0", Partitions: 1})
	if err != nil {
		t.Fatalf("failed to start kfake: %v", err)
	}
	t.Cleanup(broker.Close)
	cluster := broker.Cluster()
	if err := cluster.CreateTopic("states", 1, nil); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		cluster.SleepControl(func() { <-release })
		return nil, nil, false
	})

	cfg := kafka.DefaultConfig()
	cfg.Brokers = []string{broker.Addr()}
	p, err := kafka.NewGokaProducer(cfg, cfg.Brokers, "bound-test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 << 10
	const writes = 2 * kafka.MaxBufferedBytes / size
	value := make([]byte, size)
	var emitted, done, failed atomic.Int64
	go func() {
		for range writes {
			p.Emit("states", "cust-1", value).Then(func(err error) {
				if err != nil {
					failed.Add(1)
				}
				done.Add(1)
			})
			emitted.Add(1)
		}
	}()
	time.Sleep(3 * time.Second)
	held := emitted.Load() * size
	if held == 0 || held > kafka.MaxBufferedBytes+size {
		t.Fatalf("%d bytes handed to the producer while the broker answered nothing; want some, at most %d", held, kafka.MaxBufferedBytes+size)
	}
	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for done.Load() < writes {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes completed after the broker answered", done.Load(), writes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d writes failed", n)
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
}
