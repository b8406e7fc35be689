package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestOffsetsReadAgainAfterABrokerRestart restarts the broker under an
// Offsets reader: its next reads of high-water marks and of a group's
// commits (what ?max_lag asks in partitioned mode) must succeed, unlike
// the membership reader's before its fix
// (cluster.TestMembersReadTheGroupAgainAfterABrokerRestart).
func TestOffsetsReadAgainAfterABrokerRestart(t *testing.T) {
	addr, restart := testkit.StartRestartableKfake(t, embedded.Config{Partitions: 3})
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{addr}
	if _, err := kafka.Setup(context.Background(), kc, kafka.Topics{Events: "events", Group: "offsets-restart", Partitions: 3, Replication: 1}); err != nil {
		t.Fatal(err)
	}
	o, err := kafka.NewOffsets(kc)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	read := func() error {
		if _, err := o.HighWaterMarks("events"); err != nil {
			return err
		}
		_, err := o.Committed("offsets-restart", "events")
		return err
	}
	if err := read(); err != nil {
		t.Fatalf("read before the restart: %v", err)
	}
	restart()
	testkit.Within(t, 15*time.Second, "offsets read again after the broker restart", read)
}
