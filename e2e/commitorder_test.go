package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
)

// TestProcessorNeverCommitsPastAFailedTableWrite is the crash campaign's
// lost event, made to happen on purpose. A customer's registration and
// rename are folded, and their table writes are held by the broker; the
// rename's redelivered copy (same event id, a duplicate that writes
// nothing) is folded meanwhile, and goka would commit it at once. The
// broker then fails the held writes for good. The processor must be
// rebuilt at or before the failed writes, so the customer ends up served
// at version 2; a commit past them would lose both events for ever.
func TestProcessorNeverCommitsPastAFailedTableWrite(t *testing.T) {
	t.Parallel()
	broker, topics := startOnePartition(t)
	event := customerEvent("cust-held")
	rename := event("held-2", "customer.renamed", `{"name":"Held Twice"}`)
	produceRecords(t, broker.Addr(), topics.Events, 30*time.Second, []*kgo.Record{
		event("held-1", "customer.registered", `{"name":"Held","email":"held@example.org"}`),
		rename,
		{Key: rename.Key, Value: rename.Value}, // redelivered: a duplicate
	})

	// Hold the first produce request that carries table writes long
	// enough for the duplicate to be folded and committed (sarama commits
	// every second), then fail it with an error sarama does not retry.
	table := tableRef(t, broker, topics)
	var failed atomic.Bool
	cluster := broker.Cluster()
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		produce := req.(*kmsg.ProduceRequest)
		if failed.Load() || !carriesTopic(produce, table) {
			return nil, nil, false
		}
		cluster.SleepControl(func() { time.Sleep(2500 * time.Millisecond) })
		failed.Store(true)
		cluster.DropControl()
		return failProduce(produce, kerr.MessageTooLarge.Code), nil, true
	})

	p := startPipelineOn(t, broker.Addr(), topics)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, c := p.client.Customer(t, "cust-held", "")
		if status == 200 && c.Version == 2 && c.Name == "Held Twice" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("customer %s: status %d, state %+v; want version 2 named %q (held writes failed: %v)",
				"cust-held", status, c, "Held Twice", failed.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !failed.Load() {
		t.Fatal("the broker never failed a table write: the test did not test anything")
	}
	if n := sumCounter(t, p.reg, "eventfold_processor_restarts_total"); n < 1 {
		t.Errorf("eventfold_processor_restarts_total = %v, want the failed write to have restarted the processor", n)
	}
}

// startOnePartition starts kfake with the topics of one partition set up.
func startOnePartition(t *testing.T) (*embedded.Broker, kafka.Topics) {
	t.Helper()
	broker, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0", Partitions: 1})
	if err != nil {
		t.Fatalf("failed to start kfake: %v", err)
	}
	t.Cleanup(broker.Close)
	topics := kafka.Topics{Events: "customer-events", Group: "customers", Partitions: 1, Replication: 1}
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{broker.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kafka.Setup(ctx, kc, topics); err != nil {
		t.Fatalf("failed to set up topics: %v", err)
	}
	return broker, topics
}

// customerEvent returns a maker of structured events of customer id.
func customerEvent(id string) func(eventID, typ, data string) *kgo.Record {
	return func(eventID, typ, data string) *kgo.Record {
		return &kgo.Record{Key: []byte(id), Value: []byte(`{"specversion":"1.0","id":"` + eventID +
			`","source":"/e2e","type":"` + typ + `","subject":"` + id + `","data":` + data + `}`)}
	}
}

func carriesTopic(req *kmsg.ProduceRequest, topic topicRef) bool {
	for _, rt := range req.Topics {
		if rt.Topic == topic.name || (rt.Topic == "" && rt.TopicID == topic.id) {
			return true
		}
	}
	return false
}

// topicRef names a topic both ways a produce request can: franz-go sends
// the topic id instead of the name to brokers that take it (Produce v13,
// kfake among them).
type topicRef struct {
	name string
	id   [16]byte
}

// tableRef is the group table of topics on broker, which must exist.
func tableRef(t *testing.T, broker *embedded.Broker, topics kafka.Topics) topicRef {
	t.Helper()
	table := string(goka.GroupTable(goka.Group(topics.Group)))
	info := broker.Cluster().TopicInfo(table)
	if info == nil {
		t.Fatalf("table topic %s does not exist", table)
	}
	return topicRef{name: table, id: info.TopicID}
}

// failProduce answers every partition of req with code.
func failProduce(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Version = req.Version
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
