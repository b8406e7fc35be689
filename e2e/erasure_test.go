package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// secrets are the personal values the erasure test writes; none may be
// readable anywhere once the customer is erased.
var secrets = []string{"Secret Person", "secret@example.com", "1 Hidden Lane", "Covertown", "SEC-9",
	"Secret Renamed", "renamed.secret@example.com", "2 Private Road", "Quietville"}

func testKEKs(t testing.TB, ids ...string) (*keys.KEKs, string) {
	t.Helper()
	var text string
	for _, id := range ids {
		line, err := keys.NewKEKLine(id)
		if err != nil {
			t.Fatal(err)
		}
		text += line
	}
	k, err := keys.ParseKEKs([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return k, text
}

// erasureBrokers starts a broker of each kind with erasure on.
var erasureBrokers = []struct {
	name  string
	start func(testing.TB) (string, kafka.Topics)
}{
	{"kfake", func(t testing.TB) (string, kafka.Topics) {
		return testkit.StartKfake(t, embedded.Config{Partitions: 3}),
			kafka.Topics{Events: "customer-events", Group: "customers", Partitions: 3, Replication: 1}
	}},
	{"kafka", func(t testing.TB) (string, kafka.Topics) {
		return testkit.RequireKafka(t), kafka.Topics{Events: testkit.UniqueName("events"), Group: testkit.UniqueName("customers"), Partitions: 3, Replication: 1}
	}},
}

func (p *pipeline) post(t testing.TB, id, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(p.client.Base+"/customers/"+id+"/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *pipeline) mustPost(t testing.TB, id, body string) {
	t.Helper()
	if status, b := p.post(t, id, body); status != http.StatusCreated {
		t.Fatalf("POST %s: status %d: %s", body, status, b)
	}
}

// readTopic reads every record of a topic with a Kafka client.
func readTopic(t testing.TB, broker, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out []*kgo.Record
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func rawBytes(recs []*kgo.Record) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		b.Write(r.Key)
		b.Write(r.Value)
		for _, h := range r.Headers {
			b.WriteString(h.Key)
			b.Write(h.Value)
		}
	}
	return b.Bytes()
}

func findSecrets(where string, b []byte) []string {
	var found []string
	for _, s := range secrets {
		if bytes.Contains(b, []byte(s)) {
			found = append(found, fmt.Sprintf("%s holds %q", where, s))
		}
	}
	return found
}

// firstWatchFrame reads the first state frame of a watch stream.
func firstWatchFrame(t testing.TB, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	n, _ := io.ReadAtLeast(resp.Body, buf, 20)
	return buf[:n]
}

// TestErasureErasesEverywhere registers a customer, changes its name,
// email and address, and erases it: before the erasure history and time
// travel show the plaintext; after it no HTTP surface and no byte of the
// events, table, keys and dead-letter topics does, and a restart and a
// rebuild into a new group reach the same versions and decisions.
func TestErasureErasesEverywhere(t *testing.T) {
	for _, b := range erasureBrokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			broker, topics := b.start(t)
			keks, _ := testKEKs(t, "test-1")
			p := startPipelineKEKs(t, broker, topics, t.TempDir(), keks)
			const id = "cust-secret"
			p.mustPost(t, id, `{"type":"customer.registered","data":{"name":"Secret Person","email":"secret@example.com","address":{"line1":"1 Hidden Lane","city":"Covertown","postal_code":"SEC-9","country":"gb"}}}`)
			// A change stream shows the opened plaintext: its frames are
			// built once for every watcher, from the sealed table value.
			wctx, stopWatch := context.WithTimeout(context.Background(), 30*time.Second)
			changes := watch(t, wctx, p.client.Base+"/customers/"+id+"/watch")
			if first := <-changes; first.Data.Name != "Secret Person" {
				t.Errorf("watch's first state shows name %q, want the opened plaintext", first.Data.Name)
			}
			p.mustPost(t, id, `{"type":"customer.renamed","data":{"name":"  Secret Renamed "}}`)
			if next := <-changes; next.Data.Version != 2 || next.Data.Name != "Secret Renamed" {
				t.Errorf("watch's change shows version %d, name %q; want 2, the opened plaintext", next.Data.Version, next.Data.Name)
			}
			stopWatch()
			p.mustPost(t, id, `{"type":"customer.email_changed","data":{"email":"renamed.secret@example.com"}}`)
			p.mustPost(t, id, `{"type":"customer.address_changed","data":{"address":{"line1":"2 Private Road","city":"Quietville","postal_code":"Q1","country":"FR"}}}`)
			if status, body := p.post(t, id, `{"type":"customer.renamed","data":{"name":""}}`); status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "invalid") {
				t.Errorf("empty name: status %d %s, want 422 invalid", status, body)
			}

			_, c := p.client.Customer(t, id, "")
			if c.Name != "Secret Renamed" || c.Address == nil || c.Address.City != "Quietville" || c.PersonalData != keys.StatusEncrypted {
				t.Fatalf("state before erasure = %+v, want the opened plaintext", c)
			}
			_, v1 := p.client.Customer(t, id, "version=1")
			if v1.Name != "Secret Person" || v1.Address == nil || v1.Address.Country != "GB" {
				t.Errorf("version 1 before erasure = %+v, want the registration's plaintext", v1)
			}
			_, events := p.client.Get(t, p.client.Base+"/customers/"+id+"/events")
			if !bytes.Contains(events, []byte("secret@example.com")) {
				t.Errorf("history before erasure does not show the email: %s", events)
			}
			if found := findSecrets("events topic before erasure", rawBytes(readTopic(t, broker, topics.Events))); len(found) > 0 {
				t.Errorf("sealed writes left plaintext in the log: %v", found)
			}

			p.mustPost(t, id, `{"type":"customer.erased"}`)
			_, after := p.client.Customer(t, id, "")
			if after.Version != 5 || after.Status != processor.StatusErased || after.PersonalData != keys.StatusErased {
				t.Fatalf("state after erasure = %+v", after)
			}
			var leaks []string
			for _, url := range []string{"/customers/" + id, "/customers/" + id + "?version=1", "/customers/" + id + "?version=2",
				"/customers/" + id + "?version=3", "/customers/" + id + "?version=4", "/customers/" + id + "?at=2100-01-01T00:00:00Z",
				"/customers/" + id + "/events", "/customers?limit=1000", "/ui/api/dead-letters?limit=100"} {
				status, body := p.client.Get(t, p.client.Base+url)
				if status != http.StatusOK {
					t.Errorf("GET %s: %d %s", url, status, body)
				}
				leaks = append(leaks, findSecrets("GET "+url, body)...)
			}
			_, v1 = p.client.Customer(t, id, "version=1")
			if v1.Name != "" || v1.Email != "" || v1.PersonalData != keys.StatusErased || v1.Version != 1 {
				t.Errorf("version 1 after erasure = %+v, want no personal fields and personal_data erased", v1)
			}
			leaks = append(leaks, findSecrets("watch", firstWatchFrame(t, p.client.Base+"/customers/"+id+"/watch"))...)
			for _, topic := range []string{topics.Events, topics.Table(), topics.Keys(), topics.DeadLetter()} {
				leaks = append(leaks, findSecrets("topic "+topic, rawBytes(readTopic(t, broker, topic)))...)
			}
			if len(leaks) > 0 {
				t.Errorf("plaintext after erasure:\n%s", strings.Join(leaks, "\n"))
			}
			tombstones := 0
			for _, r := range readTopic(t, broker, topics.Keys()) {
				if strings.HasPrefix(string(r.Key), id+"/") && r.Value == nil {
					tombstones++
				}
			}
			if tombstones == 0 {
				t.Errorf("no tombstone of %s's data key in %s", id, topics.Keys())
			}

			// A restart and a rebuild into a new group fold the sealed log
			// without the erased key to the same versions and decisions.
			p.stop()
			restarted := startPipelineKEKs(t, broker, topics, t.TempDir(), keks)
			rebuiltTopics := topics
			rebuiltTopics.Group += "-rebuilt"
			rebuilt := startPipelineKEKs(t, broker, rebuiltTopics, t.TempDir(), keks)
			for name, q := range map[string]*pipeline{"restart": restarted, "rebuild": rebuilt} {
				var got *processor.Customer
				deadline := time.Now().Add(30 * time.Second)
				for time.Now().Before(deadline) {
					if _, got = q.client.Customer(t, id, ""); got != nil && got.Version == after.Version {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if got == nil || got.Version != after.Version || got.Status != processor.StatusErased {
					t.Fatalf("%s: state = %+v, want version %d erased", name, got, after.Version)
				}
				if d := decisionsOf(got); d != decisionsOf(after) {
					t.Errorf("%s: decisions %s, live %s", name, d, decisionsOf(after))
				}
				_, body := q.client.Get(t, q.client.Base+"/customers/"+id+"/events")
				if found := findSecrets(name+" history", body); len(found) > 0 {
					t.Errorf("%v", found)
				}
			}
		})
	}
}

func decisionsOf(c *processor.Customer) string {
	var b strings.Builder
	for _, d := range c.Decisions {
		fmt.Fprintf(&b, "%s:%s:%d ", d.Outcome, d.Reason, d.Version)
	}
	return b.String()
}

// sealedEvent returns the record value of the customer's first event in
// the events topic.
func sealedEvent(t testing.TB, broker, topic, id string) []byte {
	t.Helper()
	for _, r := range readTopic(t, broker, topic) {
		if string(r.Key) == id {
			return r.Value
		}
	}
	t.Fatalf("no event of %s in %s", id, topic)
	return nil
}

// TestErasureBadSealedInput: a sealed value altered in the log fails
// authentication and is dead-lettered as bad_seal; a sealed value whose
// key no one holds is dead-lettered as key_missing without stalling its
// partition; a KEK file that does not hold the topic's KEK is refused at
// start, naming the problem; a rotated KEK file (new KEK first, the old
// one kept) opens the old keys and wraps new ones with the new KEK.
func TestErasureBadSealedInput(t *testing.T) {
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 1})
	topics := kafka.Topics{Events: "customer-events", Group: "customers", Partitions: 1, Replication: 1}
	keks, oldText := testKEKs(t, "old")
	p := startPipelineKEKs(t, broker, topics, t.TempDir(), keks)
	p.mustPost(t, "cust-a", `{"type":"customer.registered","data":{"name":"Secret Person","email":"secret@example.com"}}`)
	good := sealedEvent(t, broker, topics.Events, "cust-a")

	var ev map[string]any
	if err := json.Unmarshal(good, &ev); err != nil {
		t.Fatal(err)
	}
	data := ev["data"].(map[string]any)
	name := data["name"].(string)
	keyID, blob, err := processor.ParseSealed(name)
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)-1] ^= 1
	data["name"] = processor.FormatSealed(keyID, blob)
	ev["id"], ev["type"] = "tampered", "customer.renamed"
	delete(data, "email")
	tampered, _ := json.Marshal(ev)
	data["name"] = processor.FormatSealed("00000000deadbeef", blob)
	ev["id"], ev["subject"], ev["type"] = "nokey", "cust-b", "customer.registered"
	data["email"] = processor.FormatSealed("00000000deadbeef", blob)
	missing, _ := json.Marshal(ev)
	start := time.Now()
	p.produce(t, &kgo.Record{Topic: topics.Events, Key: []byte("cust-a"), Value: tampered},
		&kgo.Record{Topic: topics.Events, Key: []byte("cust-b"), Value: missing},
		&kgo.Record{Topic: topics.Events, Key: []byte("cust-c"), Value: []byte(`{"specversion":"1.0","id":"c1","source":"/t","type":"customer.registered","data":{"name":"Plain","email":"p@example.com"}}`)})
	dlq := p.readDeadLetters(t, 2, 20*time.Second)
	reasons := map[string]string{}
	for _, r := range dlq {
		h := headers(r)
		reasons[string(r.Key)] = h[processor.HeaderReason] + ": " + h[processor.HeaderError]
	}
	if !strings.HasPrefix(reasons["cust-a"], processor.ReasonBadSeal+": name of \"cust-a\"") {
		t.Errorf("tampered seal: dead letter %q, want %s", reasons["cust-a"], processor.ReasonBadSeal)
	}
	if !strings.HasPrefix(reasons["cust-b"], processor.ReasonKeyMissing+": ") || !strings.Contains(reasons["cust-b"], "00000000deadbeef") {
		t.Errorf("unknown key: dead letter %q, want %s naming the key", reasons["cust-b"], processor.ReasonKeyMissing)
	}
	testkit.NewClient(p.client.Base).AwaitFold(t, map[string]processor.Customer{}, time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if status, c := p.client.Customer(t, "cust-c", ""); status == http.StatusOK && c.Name == "Plain" {
			if c.PersonalData != keys.StatusPlaintext {
				t.Errorf("plaintext customer: personal_data %q, want %q", c.PersonalData, keys.StatusPlaintext)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event after the unknown key was not folded: the partition stalled")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("bad seal, missing key and the next event decided in %v", time.Since(start))
	if got := sumCounter(t, p.reg, "eventfold_plaintext_events_total"); got != 1 {
		t.Errorf("eventfold_plaintext_events_total = %v, want 1", got)
	}
	p.stop()

	kc := kafka.DefaultConfig()
	kc.Brokers = []string{broker}
	wrong, _ := testKEKs(t, "old")
	kr, err := keys.New(keys.Config{Kafka: kc, Topic: topics.Keys(), KEKs: wrong})
	if err != nil {
		t.Fatal(err)
	}
	err = kr.Start(context.Background())
	kr.Close()
	if err == nil || !strings.Contains(err.Error(), `KEK "old" of the KEK file does not unwrap it`) {
		t.Errorf("wrong KEK material: start error %v, want a refusal naming the KEK", err)
	}
	other, _ := testKEKs(t, "other")
	kr, _ = keys.New(keys.Config{Kafka: kc, Topic: topics.Keys(), KEKs: other})
	err = kr.Start(context.Background())
	kr.Close()
	if err == nil || !strings.Contains(err.Error(), `wrapped by KEK "old", which the KEK file does not hold`) {
		t.Errorf("missing KEK: start error %v, want a refusal naming the KEK", err)
	}

	newLine, _ := keys.NewKEKLine("new")
	rotated, err := keys.ParseKEKs([]byte(newLine + oldText))
	if err != nil {
		t.Fatal(err)
	}
	q := startPipelineKEKs(t, broker, topics, t.TempDir(), rotated)
	if _, c := q.client.Customer(t, "cust-a", ""); c == nil || c.Name != "Secret Person" {
		t.Errorf("after KEK rotation: cust-a = %+v, want its name opened with the old KEK", c)
	}
	q.mustPost(t, "cust-d", `{"type":"customer.registered","data":{"name":"New Key","email":"n@example.com"}}`)
	var wrappedBy string
	for _, r := range readTopic(t, broker, topics.Keys()) {
		if strings.HasPrefix(string(r.Key), "cust-d/") {
			var w struct{ KEK string }
			_ = json.Unmarshal(r.Value, &w)
			wrappedBy = w.KEK
		}
	}
	if wrappedBy != "new" {
		t.Errorf("a key created after the rotation is wrapped by %q, want the new first KEK", wrappedBy)
	}
}
