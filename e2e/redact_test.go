package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	"github.com/eventfold/eventfold/internal/redact"
	"github.com/eventfold/eventfold/processor"
)

// awaitVersion waits until the pipeline serves the customer at version.
func (p *pipeline) awaitVersion(t testing.TB, id string, version int64) *processor.Customer {
	t.Helper()
	var c *processor.Customer
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, c = p.client.Customer(t, id, ""); c != nil && c.Version == version {
			return c
		}
	}
	t.Fatalf("%s: state %+v, want version %d", id, c, version)
	return nil
}

// TestRedactErasesThirdPartyPlaintext: a third-party producer writes an
// erased customer's personal data in plaintext, in both content modes and
// in a record that is not an event. eventfold redact copies the events
// topic into a new one at the same offsets in which none of that
// plaintext remains, while the other customers' records are copied byte
// for byte; a new group rebuilt from the new topic reaches the live
// table's versions and decisions, and still opens a sealed customer.
func TestRedactErasesThirdPartyPlaintext(t *testing.T) {
	for _, b := range erasureBrokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			broker, topics := b.start(t)
			testRedact(t, broker, topics)
		})
	}
}

func testRedact(t *testing.T, broker string, topics kafka.Topics) {
	keks, _ := testKEKs(t, "test-1")
	p := startPipelineKEKs(t, broker, topics, t.TempDir(), keks)

	const erased, plainKept, sealedKept = "cust-third", "cust-plain", "cust-sealed"
	structured := func(id, typ, data string) *kgo.Record {
		return &kgo.Record{Key: []byte(id), Value: []byte(fmt.Sprintf(
			`{"specversion":"1.0","id":"%s-%s","source":"/kcat","type":"%s","subject":"%s","data":%s}`, id, typ, typ, id, data))}
	}
	binary := &kgo.Record{Key: []byte(erased), Value: []byte(`{"email":"secret@example.com"}`), Headers: []kgo.RecordHeader{
		{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("bin-1")}, {Key: "ce_source", Value: []byte("/kcat")},
		{Key: "ce_type", Value: []byte(processor.TypeEmailChanged)}, {Key: "ce_subject", Value: []byte(erased)},
		{Key: "content-type", Value: []byte("application/json")}}}
	p.produce(t,
		structured(erased, processor.TypeRegistered, `{"name":"Secret Person","email":"renamed.secret@example.com","address":{"line1":"1 Hidden Lane","city":"Covertown","postal_code":"SEC-9","country":"gb"}}`),
		binary,
		// Invalid: the live fold rejects it, and so must the rebuild.
		structured(erased, processor.TypeEmailChanged, `{"email":"Secret Renamed, not an email"}`),
		// Not an event at all: dead-lettered as malformed.
		&kgo.Record{Key: []byte(erased), Value: []byte(`{"name":"2 Private Road Quietville"`)},
		structured(plainKept, processor.TypeRegistered, `{"name":"Kept Plain","email":"kept.plain@example.com"}`),
	)
	p.mustPost(t, sealedKept, `{"type":"customer.registered","data":{"name":"Kept Sealed","email":"kept.sealed@example.com"}}`)
	p.awaitVersion(t, erased, 2)
	p.mustPost(t, erased, `{"type":"customer.erased"}`)
	live := map[string]*processor.Customer{erased: p.awaitVersion(t, erased, 3), plainKept: p.awaitVersion(t, plainKept, 1),
		sealedKept: p.awaitVersion(t, sealedKept, 1)}
	if !bytes.Contains(rawBytes(readTopic(t, broker, topics.Events)), []byte("Secret Person")) {
		t.Fatal("the old events topic holds no plaintext: the test does not test redact")
	}
	p.stop()

	kc := kafka.DefaultConfig()
	kc.Brokers = []string{broker}
	to := topics.Events + "-redacted"
	rep, err := redact.Run(context.Background(), redact.Config{Kafka: kc, From: topics, To: to})
	if err != nil {
		t.Fatalf("redact: %v", err)
	}
	if rep.ErasedCustomers != 1 || rep.Redacted != 3 || rep.Blanked != 1 {
		t.Errorf("report %+v, want 1 erased customer, 3 events redacted, 1 record blanked", rep)
	}
	if _, err := redact.Run(context.Background(), redact.Config{Kafka: kc, From: topics, To: to}); !errors.Is(err, redact.ErrRefused) {
		t.Errorf("redact into a topic that holds records: %v, want ErrRefused: the offsets could not match", err)
	}
	old, redacted := readTopic(t, broker, topics.Events), readTopic(t, broker, to)
	if found := findSecrets("topic "+to, rawBytes(redacted)); len(found) > 0 {
		t.Errorf("plaintext after redact: %v", found)
	}
	if int64(len(old)) != rep.Records || len(redacted) != len(old) {
		t.Fatalf("%d records in the old topic, %d copied, %d read back", len(old), rep.Records, len(redacted))
	}
	at := map[string]*kgo.Record{}
	for _, r := range redacted {
		at[fmt.Sprint(r.Partition, "/", r.Offset)] = r
	}
	for _, r := range old {
		n := at[fmt.Sprint(r.Partition, "/", r.Offset)]
		switch {
		case n == nil || !bytes.Equal(n.Key, r.Key):
			t.Errorf("old record %d/%d of %s has no record of the same key at the same offset", r.Partition, r.Offset, r.Key)
		case string(r.Key) != erased && !bytes.Equal(n.Value, r.Value):
			t.Errorf("record %d/%d of %s, not erased, changed: %s -> %s", r.Partition, r.Offset, r.Key, r.Value, n.Value)
		}
	}
	if !bytes.Contains(rawBytes(redacted), []byte("kept.plain@example.com")) {
		t.Error("redact removed plaintext of a customer that was not erased")
	}

	newTopics := kafka.Topics{Events: to, Group: topics.Group + "-redacted", Partitions: 3, Replication: 1}
	rebuilt := startPipelineKEKs(t, broker, newTopics, t.TempDir(), keks)
	for id, want := range live {
		got := rebuilt.awaitVersion(t, id, want.Version)
		if got.Status != want.Status || decisionsOf(got) != decisionsOf(want) {
			t.Errorf("%s rebuilt from %s: status %s, decisions %s; live %s, %s", id, to, got.Status, decisionsOf(got), want.Status, decisionsOf(want))
		}
		_, body := rebuilt.client.Get(t, rebuilt.client.Base+"/customers/"+id+"/events")
		if found := findSecrets("history of "+id, body); len(found) > 0 {
			t.Errorf("%v", found)
		}
	}
	if _, c := rebuilt.client.Customer(t, sealedKept, ""); c == nil || c.Name != "Kept Sealed" || c.PersonalData != keys.StatusEncrypted {
		t.Errorf("sealed customer rebuilt from %s = %+v, want its name opened with the copied key", to, c)
	}
	for _, topic := range []string{newTopics.Table(), newTopics.Keys(), newTopics.DeadLetter()} {
		if found := findSecrets("topic "+topic, rawBytes(readTopic(t, broker, topic))); len(found) > 0 {
			t.Errorf("plaintext after redact and rebuild: %v", found)
		}
	}
}
