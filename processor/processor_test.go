package processor

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/eventfold/eventfold/internal/kafka"
)

const (
	eventsTopic = "customer-events"
	dlqTopic    = "customer-events.dlq"
)

var groupTable = goka.GroupTable(goka.Group("customers"))

func testConfig(partitions int32) Config {
	return Config{
		Kafka:      kafka.Config{Brokers: []string{"x"}, Version: kafka.DefaultVersion},
		Topics:     kafka.Topics{Events: eventsTopic, Group: "customers", Partitions: 1, Replication: 1},
		Partitions: partitions,
		Logger:     slog.New(slog.DiscardHandler),
	}
}

type harness struct {
	tt  *tester.Tester
	reg *prometheus.Registry
	dlq *tester.QueueTracker
}

// startProcessor runs the processor's graph on goka's in-memory tester,
// with the options Run uses that matter to the callback. The tester has a
// single partition 0; partitions is what the processor believes the
// events topic has, so a count above 1 lets a test produce records on the
// wrong partition.
func startProcessor(t *testing.T, partitions int32) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := New(testConfig(partitions), reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tt := tester.New(t)
	gp, err := goka.NewProcessor(nil, p.Graph(),
		goka.WithTester(tt),
		goka.WithHasher(NewMurmur2Hasher),
		goka.WithNilHandling(goka.NilProcess),
		goka.WithLogger(kafka.GokaLogger(slog.New(slog.DiscardHandler), "goka-processor")),
	)
	if err != nil {
		t.Fatalf("failed to build goka processor: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor stopped with %v", err)
		}
	})
	// A test that stops the processor before its tables are ready makes
	// Run fail with "context closed while waiting for startup tables";
	// waiting here keeps every test's stop a stop of a running processor.
	readyCtx, readyCancel := context.WithTimeout(ctx, 10*time.Second)
	defer readyCancel()
	if err := gp.WaitForReadyContext(readyCtx); err != nil {
		t.Fatalf("processor not ready: %v", err)
	}
	return &harness{tt: tt, reg: reg, dlq: tt.NewQueueTracker(dlqTopic)}
}

func (h *harness) consume(t *testing.T, key string, value []byte, opts ...tester.EmitOption) {
	t.Helper()
	if value == nil {
		h.tt.Consume(eventsTopic, key, nil, opts...) // a tombstone
		return
	}
	h.tt.Consume(eventsTopic, key, value, opts...)
}

func (h *harness) customer(t *testing.T, key string) *Customer {
	t.Helper()
	v := h.tt.TableValue(groupTable, key)
	if v == nil {
		return nil
	}
	c, ok := v.(*Customer)
	if !ok {
		t.Fatalf("table value of %q is %T, want *Customer", key, v)
	}
	return c
}

// counter returns the value of a counter of the registry, or of its series
// with the given label value.
func (h *harness) counter(t *testing.T, name, labelValue string) float64 {
	t.Helper()
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelValue == "" && len(m.GetLabel()) == 0 {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetValue() == labelValue {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatalf("metric %s has no series %q", name, labelValue)
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

// wantCounters checks counters by "name{label value}" or "name".
func (h *harness) wantCounters(t *testing.T, want map[string]float64) {
	t.Helper()
	for series, v := range want {
		name, label, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
		if got := h.counter(t, name, label); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
}

func (h *harness) wantNoDeadLetters(t *testing.T) {
	t.Helper()
	if key, value, ok := h.dlq.NextRaw(); ok {
		t.Errorf("unexpected dead letter %q: %q", key, value)
	}
}

func encodeEvent(t *testing.T, ev Event) []byte {
	t.Helper()
	b, err := Encode(ev)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

// wireEvent is the encoded event with id and payload for the customer key.
func wireEvent(t *testing.T, key, id, typ string, payload any) []byte {
	t.Helper()
	return encodeEvent(t, Event{ID: id, Source: "/test", Type: typ, Subject: key,
		Time: baseTime, Payload: payload})
}

func TestProcessorFoldsEventsIntoTable(t *testing.T) {
	h := startProcessor(t, 1)
	recordTime := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	h.consume(t, "cust-1", wireEvent(t, "cust-1", "e1", TypeRegistered, registeredData()))
	// Without an event time the record timestamp is the event time.
	renamed := encodeEvent(t, Event{ID: "e2", Source: "/test", Type: TypeRenamed, Payload: &RenamedData{Name: "Ada King"}})
	h.consume(t, "cust-1", renamed, tester.WithTime(recordTime))
	h.consume(t, "cust-2", wireEvent(t, "cust-2", "e3", TypeRegistered, &RegisteredData{Name: "Grace", Email: "grace@example.com"}))

	got := h.customer(t, "cust-1")
	want := &Customer{ID: "cust-1", Version: 2, Status: StatusActive, Name: "Ada King", Email: "ada@example.com",
		Address:   &Address{Line1: "1 Main Street", Line2: "Flat 2", City: "London", PostalCode: "N1 9GU", Country: "GB"},
		CreatedAt: baseTime, UpdatedAt: recordTime, LastEventID: "e2", NextOffset: 2,
		Decisions: []Decision{{EventID: "e1", Outcome: Accepted, Version: 1, Type: TypeRegistered, Offset: 0},
			{EventID: "e2", Outcome: Accepted, Version: 2, Type: TypeRenamed, Offset: 1}}}
	if got == nil {
		t.Fatal("no table value for cust-1")
	}
	// The history locates the accepted events: offsets 0 and 1.
	if offsets, err := got.History.Offsets(); err != nil || !reflect.DeepEqual(offsets, []int64{0, 1}) {
		t.Errorf("history offsets = %v, %v; want [0 1]", offsets, err)
	}
	want.History = got.History
	if !reflect.DeepEqual(got, want) {
		t.Errorf("table value of cust-1 =\n%+v\nwant\n%+v", got, want)
	}
	if c := h.customer(t, "cust-2"); c == nil || c.Version != 1 || c.Name != "Grace" || c.NextOffset != 3 {
		t.Errorf("table value of cust-2 = %+v, want Grace at version 1, next offset 3", c)
	}
	h.wantNoDeadLetters(t)
	h.wantCounters(t, map[string]float64{
		"eventfold_events_folded_total{" + TypeRegistered + "}":    2,
		"eventfold_events_folded_total{" + TypeRenamed + "}":       1,
		"eventfold_events_rejected_total{" + ReasonMalformed + "}": 0,
		"eventfold_events_duplicate_total":                         0,
	})
}

func TestProcessorDeadLettersBadRecords(t *testing.T) {
	valid := wireEvent(t, "cust-1", "e1", TypeRegistered, registeredData())
	big := append(bytes.Clone(valid), bytes.Repeat([]byte(" "), 2<<20)...)
	fits := append(bytes.Clone(valid), bytes.Repeat([]byte(" "), 512<<10)...)
	wrongKey := keyOnPartition(t, "cust", 2, 1)

	tests := []struct {
		name       string
		partitions int32
		key        string
		value      []byte
		reason     string
		errPart    string // a part of the error header
		truncated  bool
	}{
		{"not JSON", 1, "cust-1", []byte("not json"), ReasonMalformed, "not a JSON object", false},
		{"tombstone", 1, "cust-1", nil, ReasonMalformed, "empty value", false},
		{"subject differs from key", 1, "cust-2", valid, ReasonMalformed, "differs from key", false},
		{"invalid key", 1, "cust 1", wireEvent(t, "", "e1", TypeRegistered, registeredData()), ReasonMalformed, "invalid character", false},
		{"value over the record limit is truncated", 1, "cust-1", big, ReasonMalformed, "exceeds", true},
		{"large value that fits is kept whole", 1, "cust-1", fits, ReasonMalformed, "exceeds", false},
		{"wrong partition", 2, wrongKey, wireEvent(t, wrongKey, "e1", TypeRegistered, registeredData()), ReasonWrongPartition,
			"belongs to partition 1, record is on partition 0", false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			h := startProcessor(t, test.partitions)
			// An earlier record moves the offset off zero, so that the
			// offset header is seen to be the record's own.
			other := keyOnPartition(t, "other", test.partitions, 0)
			h.consume(t, other, wireEvent(t, other, "x", TypeRenamed, &RenamedData{Name: "x"}))
			h.consume(t, test.key, test.value, tester.WithHeaders(goka.Headers{"trace": []byte("t-1")}))

			headers, key, value, ok := h.dlq.NextRawWithHeaders()
			if !ok {
				t.Fatal("no dead letter")
			}
			if key != test.key {
				t.Errorf("dead letter key = %q, want %q", key, test.key)
			}
			if size, limit := producedSize(key, value, headers), sarama.NewConfig().Producer.MaxMessageBytes; size > limit {
				t.Errorf("dead letter of %d bytes exceeds sarama's default Producer.MaxMessageBytes %d", size, limit)
			}
			if test.truncated {
				// Keep as much of the value as fits.
				if !bytes.HasPrefix(test.value, value) || len(value) < 1<<20-8<<10 {
					t.Errorf("truncated dead letter: value of %d bytes, a prefix of the original: %v",
						len(value), bytes.HasPrefix(test.value, value))
				}
			} else if !bytes.Equal(value, test.value) {
				t.Errorf("dead letter value of %d bytes differs from the original %d bytes", len(value), len(test.value))
			}
			wantHeaders := map[string]string{
				HeaderReason: test.reason, HeaderTopic: eventsTopic, HeaderPartition: "0", HeaderOffset: "1", "trace": "t-1",
			}
			if test.truncated {
				wantHeaders[HeaderTruncated] = fmt.Sprint(len(test.value))
			}
			for k, v := range wantHeaders {
				if got := string(headers[k]); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if _, ok := headers[HeaderTruncated]; ok && !test.truncated {
				t.Errorf("header %s set on a short value", HeaderTruncated)
			}
			if msg := string(headers[HeaderError]); !strings.Contains(msg, test.errPart) {
				t.Errorf("header %s = %q, want it to contain %q", HeaderError, msg, test.errPart)
			}
			if _, _, ok := h.dlq.NextRaw(); ok {
				t.Error("more than one dead letter for one record")
			}
			if c := h.customer(t, test.key); c != nil {
				t.Errorf("dead-lettered record reached the table: %+v", c)
			}
			h.wantCounters(t, map[string]float64{
				"eventfold_events_rejected_total{" + test.reason + "}":  1,
				"eventfold_dlq_records_total{" + test.reason + "}":      1,
				"eventfold_events_folded_total{" + TypeRegistered + "}": 0,
			})
		})
	}
}

// producedSize is the size sarama's producer checks against
// Producer.MaxMessageBytes before it sends a record: a dead letter above it
// fails the emit, which stops the processor.
func producedSize(key string, value []byte, headers goka.Headers) int {
	msg := &sarama.ProducerMessage{Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}
	for k, v := range headers {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: v})
	}
	return msg.ByteSize(2)
}

// TestProcessorDeadLetterOfHugeRecordFitsProducerLimit feeds records that
// sarama's producer (and the broker's default max.message.bytes) accept,
// but whose key or headers leave no room for the dead-letter headers: the
// dead letter must still fit, or its emit fails and the processor stops on
// the same record after every restart.
func TestProcessorDeadLetterOfHugeRecordFitsProducerLimit(t *testing.T) {
	limit := sarama.NewConfig().Producer.MaxMessageBytes
	value := []byte("not json")
	// Inputs 100 bytes under sarama's limit, which also leaves room for
	// the batch overhead under the broker's max.message.bytes (1048588).
	target := limit - 100
	fixed := producedSize("", value, nil)
	tests := []struct {
		name    string
		key     string
		headers goka.Headers
	}{
		{"headers near 1 MiB", "cust-1", goka.Headers{"baggage": bytes.Repeat([]byte("b"),
			target-fixed-len("cust-1")-len("baggage")-2*binary.MaxVarintLen32)}},
		{"key near 1 MiB", strings.Repeat("k", target-fixed), nil},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if size := producedSize(test.key, value, test.headers); size != target {
				t.Fatalf("the input record has %d bytes, want %d", size, target)
			}
			h := startProcessor(t, 1)
			h.consume(t, test.key, value, tester.WithHeaders(test.headers))

			headers, key, got, ok := h.dlq.NextRawWithHeaders()
			if !ok {
				t.Fatal("no dead letter")
			}
			if string(headers[HeaderReason]) != ReasonMalformed {
				t.Errorf("header %s = %q, want %q", HeaderReason, headers[HeaderReason], ReasonMalformed)
			}
			if size := producedSize(key, got, headers); size > limit {
				t.Errorf("dead letter of %d bytes (key %d, value %d bytes) exceeds sarama's default Producer.MaxMessageBytes %d: "+
					"the emit would fail and stop the processor", size, len(key), len(got), limit)
			}
		})
	}
}

// keyOnPartition returns a key with the prefix that belongs to the given
// partition of a topic with the given partition count. The tester only
// has partition 0: a key of any other partition arrives on the wrong one.
func keyOnPartition(t *testing.T, prefix string, partitions, partition int32) string {
	t.Helper()
	for i := range 1000 {
		key := fmt.Sprintf("%s-%d", prefix, i)
		if PartitionFor(key, partitions) == partition {
			return key
		}
	}
	t.Fatalf("no key %s-* on partition %d of %d", prefix, partition, partitions)
	return ""
}

func TestProcessorAcceptsKeysOfItsPartition(t *testing.T) {
	h := startProcessor(t, 2)
	key := keyOnPartition(t, "cust", 2, 0)
	h.consume(t, key, wireEvent(t, key, "e1", TypeRegistered, registeredData()))
	if c := h.customer(t, key); c == nil || c.Version != 1 {
		t.Errorf("table value of %q = %+v, want version 1", key, c)
	}
	h.wantNoDeadLetters(t)
}

func TestProcessorRecordsRejections(t *testing.T) {
	h := startProcessor(t, 1)
	h.consume(t, "cust-1", wireEvent(t, "cust-1", "e1", TypeRenamed, &RenamedData{Name: "Ada"}))

	c := h.customer(t, "cust-1")
	if c == nil {
		t.Fatal("no table entry for a rejected event")
	}
	if c.Registered() || c.Version != 0 || c.ID != "cust-1" || c.NextOffset != 1 {
		t.Errorf("table value = %+v, want unregistered cust-1 at version 0, next offset 1", c)
	}
	d, ok := c.Decision("e1")
	if want := (Decision{EventID: "e1", Outcome: Rejected, Reason: ReasonNotRegistered, Version: 0}); !ok ||
		d.EventID != want.EventID || d.Outcome != want.Outcome || d.Reason != want.Reason || d.Version != 0 {
		t.Errorf("Decision(e1) = %+v, %v; want %+v", d, ok, want)
	}
	h.wantNoDeadLetters(t)
	h.wantCounters(t, map[string]float64{
		"eventfold_events_rejected_total{" + ReasonNotRegistered + "}": 1,
		"eventfold_dlq_records_total{" + ReasonMalformed + "}":         0,
		"eventfold_events_folded_total{" + TypeRenamed + "}":           0,
	})

	// The customer can still be registered afterwards.
	h.consume(t, "cust-1", wireEvent(t, "cust-1", "e2", TypeRegistered, registeredData()))
	if c := h.customer(t, "cust-1"); c == nil || c.Version != 1 || len(c.Decisions) != 2 {
		t.Errorf("after registration: %+v, want version 1 with two decisions", c)
	}
}

func TestProcessorIgnoresDuplicates(t *testing.T) {
	tests := []struct {
		name  string
		value func(t *testing.T) []byte
	}{
		{"same record again", func(t *testing.T) []byte {
			return wireEvent(t, "cust-1", "e1", TypeRegistered, registeredData())
		}},
		{"same id, other content", func(t *testing.T) []byte {
			return wireEvent(t, "cust-1", "e1", TypeRenamed, &RenamedData{Name: "Changed"})
		}},
		{"same id as a rejected event", func(t *testing.T) []byte {
			return wireEvent(t, "cust-1", "bad", TypeRenamed, &RenamedData{Name: "Valid now"})
		}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			h := startProcessor(t, 1)
			h.consume(t, "cust-1", wireEvent(t, "cust-1", "e1", TypeRegistered, registeredData()))
			h.consume(t, "cust-1", wireEvent(t, "cust-1", "bad", TypeRenamed, &RenamedData{Name: ""}))
			before := h.customer(t, "cust-1")
			tableWrites := h.tt.NewQueueTracker(string(groupTable))

			h.consume(t, "cust-1", test.value(t))

			if got := h.customer(t, "cust-1"); !reflect.DeepEqual(got, before) {
				t.Errorf("duplicate changed the table:\n%+v\nwas\n%+v", got, before)
			}
			// Writing the unchanged state back would still cost a table
			// record; a duplicate must not be written at all.
			if key, _, ok := tableWrites.NextRaw(); ok {
				t.Errorf("duplicate wrote %q to the table topic", key)
			}
			h.wantNoDeadLetters(t)
			h.wantCounters(t, map[string]float64{
				"eventfold_events_duplicate_total":                       1,
				"eventfold_events_folded_total{" + TypeRegistered + "}":  1,
				"eventfold_events_folded_total{" + TypeRenamed + "}":     0,
				"eventfold_events_rejected_total{" + ReasonInvalid + "}": 1,
			})
		})
	}
}

func TestProcessorMetricsExposeEveryLabel(t *testing.T) {
	h := startProcessor(t, 1)
	tests := []struct {
		name   string
		series int
	}{
		{"eventfold_events_folded_total", len(EventTypes)},
		{"eventfold_events_rejected_total", len(Reasons)},
		{"eventfold_dlq_records_total", len(DeadLetterReasons)},
		{"eventfold_events_duplicate_total", 1},
		{"eventfold_processor_restarts_total", 1},
		{"eventfold_processor_rebalances_total", 1},
	}
	families, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	series := make(map[string]int)
	for _, f := range families {
		series[f.GetName()] = len(f.GetMetric())
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if n := series[test.name]; n != test.series {
				t.Errorf("%d series, want %d", n, test.series)
			}
		})
	}
	if problems, err := promlint.NewWithMetricFamilies(families).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("metric lint: %v %+v", err, problems)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no brokers", func(c *Config) { c.Kafka.Brokers = nil }},
		{"protocol older than 2.1", func(c *Config) { c.Kafka.Version = "2.0.0" }},
		{"unparsable version", func(c *Config) { c.Kafka.Version = "four" }},
		{"no events topic", func(c *Config) { c.Topics.Events = "" }},
		{"no group", func(c *Config) { c.Topics.Group = "" }},
		{"no partitions", func(c *Config) { c.Partitions = 0 }},
		{"negative partitions", func(c *Config) { c.Partitions = -3 }},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			cfg := testConfig(1)
			test.edit(&cfg)
			if p, err := New(cfg, prometheus.NewRegistry()); err == nil {
				t.Errorf("New = %+v, want an error", p)
			}
		})
	}
	t.Run("second processor on one registry", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		if _, err := New(testConfig(1), reg); err != nil {
			t.Fatalf("first New: %v", err)
		}
		if _, err := New(testConfig(1), reg); err == nil {
			t.Error("second New on the same registry succeeded, want a registration error")
		}
	})
}
