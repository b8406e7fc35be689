package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// newProducer returns a franz-go client that produces to topic, with opts
// added (partitioner, batch size). The caller closes it: a test may
// produce many times, and clients left to the cleanup would pile up.
func newProducer(t testing.TB, brokers, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic(topic)}, opts...)...)
	if err != nil {
		t.Fatalf("failed to create kgo client: %v", err)
	}
	return cl
}

// produceRecords produces records to topic, in order per partition, and
// fails the test unless all are acknowledged within timeout. franz-go
// places a keyed record as Kafka's Java client does (murmur2), unless opts
// name another partitioner: an independent producer of the event
// contract.
func produceRecords(t testing.TB, brokers, topic string, timeout time.Duration, records []*kgo.Record, opts ...kgo.Opt) {
	t.Helper()
	if len(records) == 0 {
		return
	}
	cl := newProducer(t, brokers, topic, opts...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("failed to produce %d records to %s: %v", len(records), topic, err)
	}
}

// lineRecords are the Kafka records of event lines.
func lineRecords(lines []testkit.Line) []*kgo.Record {
	out := make([]*kgo.Record, len(lines))
	for i, l := range lines {
		out[i] = &kgo.Record{Key: []byte(l.Key), Value: l.Value}
	}
	return out
}

// valueLines renders the values of lines one a line, the input of
// `eventfold produce`.
func valueLines(lines []testkit.Line) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l.Value)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// tsvLines renders lines as key<TAB>value lines, the input of kcat -K '\t',
// Kafka's console producer and produce_confluent.py.
func tsvLines(t *testing.T, lines []testkit.Line) []byte {
	t.Helper()
	var b bytes.Buffer
	for i, l := range lines {
		if bytes.ContainsAny(l.Value, "\t\n") || strings.ContainsAny(l.Key, "\t\n") {
			t.Fatalf("line %d holds a tab or newline, which the producers would split on", i+1)
		}
		b.WriteString(l.Key)
		b.WriteByte('\t')
		b.Write(l.Value)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
