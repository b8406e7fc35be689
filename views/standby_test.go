package views

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestStandbyCopyResumesFromItsCheckpoint follows partition 1 of a table
// topic on kfake into a standby copy on disk, stops it, lets the table
// grow, and starts a new copy on the same directory: it serves the keys
// of both runs, and reads only the records written while it was stopped.
// A copy of partition 0 is never asked for, and so never held.
func TestStandbyCopyResumesFromItsCheckpoint(t *testing.T) {
	t.Parallel()
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 2})
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{broker}
	const table = "customers-table"
	admin, err := sarama.NewClusterAdmin(kc.Brokers, kc.Sarama())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.CreateTopic(table, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	produce := func(from, to int) {
		t.Helper()
		sc := kc.Sarama()
		sc.Producer.Return.Successes = true
		sc.Producer.Partitioner = sarama.NewManualPartitioner
		p, err := sarama.NewSyncProducer(kc.Brokers, sc)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := from; i < to; i++ {
			for _, part := range []int32{0, 1} {
				value := fmt.Sprintf(`{"id":"p%d-%d","version":%d}`, part, i, i+1)
				if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: table, Partition: part,
					Key: sarama.StringEncoder(fmt.Sprintf("p%d-%d", part, i)), Value: sarama.StringEncoder(value)}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	dir := t.TempDir()
	run := func(keys int64) (applied float64) {
		t.Helper()
		reg := prometheus.NewRegistry()
		s, err := newStandbys(StandbyConfig{Kafka: kc, Table: table, Dir: dir, Refresh: 50 * time.Millisecond,
			Partitions: func() []int32 { return []int32{1} },
			Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))},
			NewHub(nil), reg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("standby run: %v", err)
			}
		}()
		for deadline := time.Now().Add(30 * time.Second); !slices.Equal(s.Held(), []int32{1}) || s.Keys() != keys; {
			if time.Now().After(deadline) {
				t.Fatalf("the copy holds partitions %v with %d keys, want [1] with %d", s.Held(), s.Keys(), keys)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if c := s.serving(1); c == nil || c.lagOf() != 0 {
			t.Fatalf("the caught-up copy of partition 1 lags %d records", c.lagOf())
		}
		for _, id := range []string{"p1-0", fmt.Sprintf("p1-%d", keys-1)} {
			if v, err := s.serving(1).st.Get(id); err != nil || v == nil {
				t.Errorf("the copy has no %s (%v)", id, err)
			}
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "eventfold_standby_records_total" {
				return f.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("no eventfold_standby_records_total")
		return 0
	}
	produce(0, 100)
	if got := run(100); got != 100 {
		t.Errorf("a new copy stored %v records, want the partition's 100", got)
	}
	produce(100, 130)
	if got := run(130); got != 30 {
		t.Errorf("the restarted copy stored %v records, want only the 30 it missed", got)
	}
}
