package cluster

import (
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestMembersReadTheGroupAgainAfterABrokerRestart restarts the broker
// under a Members: its next descriptions of the group must succeed. The
// partitioned crash campaign found that they did not: the admin client
// kept writing to the connection the broker had closed ("broken pipe")
// for as long as the instance ran, so each instance routed by the owners
// of before the restart, and reads of moved partitions answered 503
// forward_loop until the end of the campaign.
func TestMembersReadTheGroupAgainAfterABrokerRestart(t *testing.T) {
	addr, restart := testkit.StartRestartableKfake(t, embedded.Config{Partitions: 3})
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{addr}
	m, err := New(Config{Kafka: kc, Group: "members-restart", Topic: "events", Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.refresh(); err != nil {
		t.Fatalf("describe before the restart: %v", err)
	}
	restart()
	testkit.Within(t, 15*time.Second, "the group described again after the broker restart", m.refresh)
}
