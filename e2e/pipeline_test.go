package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	"github.com/eventfold/eventfold/internal/service"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// pipeline is the whole service in one test process, on kfake.
type pipeline struct {
	broker  string
	topics  kafka.Topics
	reg     *prometheus.Registry
	client  *testkit.Client
	handler http.Handler
	routes  []web.Route
	// stop stops the service before the test ends; cleanup does too.
	stop func()
}

// startPipeline runs the service in process on a fresh kfake cluster.
func startPipeline(t testing.TB, opts ...func(*web.Config)) *pipeline {
	t.Helper()
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 6})
	return startPipelineOn(t, broker, kafka.Topics{Events: "customer-events", Group: "customers", Partitions: 6, Replication: 1}, opts...)
}

// startRealKafkaPipeline runs the service in process beside the real
// Apache Kafka of the suite, on topics of its own.
func startRealKafkaPipeline(t testing.TB) *pipeline {
	t.Helper()
	broker := testkit.RequireKafka(t)
	return startPipelineOn(t, broker, kafka.Topics{Events: testkit.UniqueName("events"), Group: testkit.UniqueName("customers"), Partitions: 6, Replication: 1})
}

// brokers are the two kinds of broker every event-sourcing feature is
// tested on.
var brokers = []struct {
	name  string
	start func(testing.TB) *pipeline
}{
	{"kfake", func(t testing.TB) *pipeline { return startPipeline(t) }},
	{"kafka", startRealKafkaPipeline},
}

// forEachBroker runs test in parallel on a fresh pipeline on each kind of
// broker.
func forEachBroker(t *testing.T, test func(t *testing.T, p *pipeline)) {
	t.Helper()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.start(t))
		})
	}
}

// startPipelineOn runs the service in process on the given broker, with
// the table copies in leveldb under a temp dir, as serve keeps them.
func startPipelineOn(t testing.TB, broker string, topics kafka.Topics, opts ...func(*web.Config)) *pipeline {
	t.Helper()
	return startPipelineStored(t, broker, topics, t.TempDir(), opts...)
}

// startPipelineStored is startPipelineOn with the table copies under
// storageDir, or in memory when it is empty.
func startPipelineStored(t testing.TB, broker string, topics kafka.Topics, storageDir string, opts ...func(*web.Config)) *pipeline {
	t.Helper()
	return startPipelineKEKs(t, broker, topics, storageDir, nil, opts...)
}

// startPipelineKEKs is startPipelineStored with erasure on when keks is
// not nil.
func startPipelineKEKs(t testing.TB, broker string, topics kafka.Topics, storageDir string, keks *keys.KEKs, opts ...func(*web.Config)) *pipeline {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{broker}
	cfg := web.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	for _, opt := range opts {
		opt(&cfg)
	}
	// The service as serve assembles it, HTTP server included.
	svc, stop := runService(t, service.Config{Kafka: kc, Topics: topics, DataDir: storageDir, Web: cfg, Logger: log,
		RestartBackoff: 200 * time.Millisecond, KEKs: keks})
	p := &pipeline{broker: broker, topics: topics, reg: svc.Registry, client: testkit.NewClient("http://" + svc.Addr().String()),
		handler: svc.Server.Handler(), routes: svc.Server.Routes()}
	p.stop = stop
	p.client.WaitReady(t, 30*time.Second)
	return p
}

// runService assembles the service and runs it until the returned stop,
// or the test's end.
func runService(t testing.TB, cfg service.Config) (*service.Service, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("failed to assemble the service: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		awaitStopped(t, "service", done, 30*time.Second)
	})
	t.Cleanup(stop)
	return svc, stop
}

// customerPage is the body of GET /customers.
type customerPage struct {
	Customers []processor.Customer `json:"customers"`
	Next      string               `json:"next"`
}

// listPage reads GET /customers?after=&limit=, failing the test on
// anything but a 200 with a page.
func (p *pipeline) listPage(t testing.TB, after string, limit int) customerPage {
	t.Helper()
	status, body := p.client.Get(t, fmt.Sprintf("%s/customers?limit=%d&after=%s", p.client.Base, limit, after))
	if status != http.StatusOK {
		t.Fatalf("list: status %d: %s", status, body)
	}
	var page customerPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("list: %v", err)
	}
	return page
}

// awaitStopped waits until what, cancelled a moment ago, has stopped and
// sent its error on done; an error, or no stop within timeout, fails the
// test.
func awaitStopped(t testing.TB, what string, done <-chan error, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s stopped with error: %v", what, err)
		}
	case <-time.After(timeout):
		t.Errorf("%s did not stop within %s of cancellation", what, timeout)
	}
}

// produce sends records with franz-go, whose default partitioner is the
// Java client's murmur2: an independent producer of the event contract.
func (p *pipeline) produce(t testing.TB, records ...*kgo.Record) {
	t.Helper()
	produceRecords(t, p.broker, p.topics.Events, 30*time.Second, records,
		kgo.ProducerBatchMaxBytes(2<<20), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
}

// produceAndAwaitFold produces lines and waits until the service serves
// their reference fold, which it returns.
func (p *pipeline) produceAndAwaitFold(t testing.TB, lines []testkit.Line, timeout time.Duration) map[string]processor.Customer {
	t.Helper()
	p.produce(t, lineRecords(lines)...)
	want := testkit.ReferenceFold(t, lines)
	p.client.AwaitFold(t, want, timeout)
	return want
}

func TestPipelineFoldsSampleLikeReferenceFold(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	want := p.produceAndAwaitFold(t, testkit.ReadLines(t, testkit.SampleFile(t)), 30*time.Second)

	var accepted int64
	for _, c := range want {
		accepted += c.Version
	}
	if got := sumCounter(t, p.reg, "eventfold_events_folded_total"); got != float64(accepted) {
		t.Errorf("eventfold_events_folded_total = %v, want %d", got, accepted)
	}
	if got := sumCounter(t, p.reg, "eventfold_dlq_records_total"); got != 0 {
		t.Errorf("eventfold_dlq_records_total = %v, want 0: sample events all belong where they land", got)
	}
}

func TestPipelineListPaginatesInIDOrder(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	want := p.produceAndAwaitFold(t, testkit.ReadLines(t, testkit.SampleFile(t)), 30*time.Second)

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		page := p.listPage(t, after, 7)
		if len(page.Customers) > 7 {
			t.Fatalf("page of %d customers exceeds limit 7", len(page.Customers))
		}
		for _, c := range page.Customers {
			got = append(got, c.ID)
			if d := testkit.Diff(want[c.ID], c); d != "" {
				t.Errorf("listed %s: %s", c.ID, d)
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if w := testkit.Registered(want); strings.Join(got, ",") != strings.Join(w, ",") {
		t.Errorf("listed ids\n got %v\nwant %v", got, w)
	}
}

func TestPipelineMalformedRecordsGoToDeadLetterTopic(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	good := testkit.ReadLines(t, testkit.SampleFile(t))
	event := func(key, typ, data string) []byte {
		return []byte(fmt.Sprintf(`{"specversion":"1.0","id":"bad-%s-%d","source":"/test","type":%q,"subject":%q,"data":%s}`, key, time.Now().UnixNano(), typ, key, data))
	}
	wrongKey := "cust-wrong-partition"
	rightPartition := processor.PartitionFor(wrongKey, 6)
	// A value of about 1 MiB fits a dead letter whole; one at the
	// broker's limit leaves no room for the reason headers and is
	// truncated, with its original size in a header.
	huge := []byte(strings.Repeat("x", 1<<20-4096))
	hugest := []byte(strings.Repeat("y", 1<<20-600))
	bad := []struct {
		name      string
		record    *kgo.Record
		reason    string
		truncated bool
	}{
		{"truncated JSON", &kgo.Record{Key: []byte("cust-0001"), Value: []byte(`{"specversion":"1.0","id":"x`)}, processor.ReasonMalformed, false},
		{"wrong types", &kgo.Record{Key: []byte("cust-0001"), Value: event("cust-0001", processor.TypeRenamed, `{"name":42}`)}, processor.ReasonMalformed, false},
		{"unknown type", &kgo.Record{Key: []byte("cust-0001"), Value: event("cust-0001", "customer.promoted", `{}`)}, processor.ReasonMalformed, false},
		{"key/subject mismatch", &kgo.Record{Key: []byte("cust-0002"), Value: event("cust-0001", processor.TypeRenamed, `{"name":"X"}`)}, processor.ReasonMalformed, false},
		{"1 MiB value", &kgo.Record{Key: []byte("cust-0003"), Value: huge}, processor.ReasonMalformed, false},
		{"value at the broker's limit", &kgo.Record{Key: []byte("cust-0003"), Value: hugest}, processor.ReasonMalformed, true},
		{"empty key", &kgo.Record{Key: nil, Value: event("", processor.TypeRenamed, `{"name":"X"}`)}, processor.ReasonMalformed, false},
		{"binary garbage", &kgo.Record{Key: []byte("cust-0004"), Value: []byte{0xff, 0xfe, 0x00, 0x01, 0x80, 0x7f}}, processor.ReasonMalformed, false},
		{"tombstone", &kgo.Record{Key: []byte("cust-0005"), Value: nil}, processor.ReasonMalformed, false},
		{"wrong partition", &kgo.Record{Key: []byte(wrongKey), Partition: (rightPartition + 1) % 6,
			Value: event(wrongKey, processor.TypeRegistered, `{"name":"W","email":"w@example.com"}`)}, processor.ReasonWrongPartition, false},
	}
	// Interleave the bad records with the good ones, mid-stream.
	var records []*kgo.Record
	goodRecords := lineRecords(good)
	step := len(goodRecords) / (len(bad) + 1)
	for i, b := range bad {
		records = append(records, goodRecords[i*step:(i+1)*step]...)
		records = append(records, b.record)
	}
	records = append(records, goodRecords[len(bad)*step:]...)
	p.produceMixed(t, records)

	p.client.AwaitFold(t, testkit.ReferenceFold(t, good), 30*time.Second)
	if status, _ := p.client.Customer(t, wrongKey, ""); status != http.StatusNotFound {
		t.Errorf("%s produced to the wrong partition: status %d, want 404", wrongKey, status)
	}

	dlq := p.readDeadLetters(t, len(bad), 30*time.Second)
	if len(dlq) < len(bad) {
		t.Fatalf("read %d of %d dead letters within 30s", len(dlq), len(bad))
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			r := matchDeadLetter(dlq, b.record)
			if r == nil {
				t.Fatalf("no dead letter with key %q and the original value", b.record.Key)
			}
			h := headers(r)
			if h[processor.HeaderReason] != b.reason {
				t.Errorf("reason header %q, want %q (error: %s)", h[processor.HeaderReason], b.reason, h[processor.HeaderError])
			}
			if h[processor.HeaderError] == "" {
				t.Error("no error header")
			}
			if b.truncated {
				if h[processor.HeaderTruncated] != fmt.Sprint(len(b.record.Value)) {
					t.Errorf("truncated header %q, want %d", h[processor.HeaderTruncated], len(b.record.Value))
				}
			} else if string(r.Value) != string(b.record.Value) {
				t.Errorf("dead letter value differs from the original: %q vs %q", r.Value, b.record.Value)
			}
		})
	}
	if got := counterValue(t, p.reg, "eventfold_events_rejected_total", "reason", processor.ReasonMalformed); got != float64(len(bad)-1) {
		t.Errorf("malformed rejections = %v, want %d", got, len(bad)-1)
	}
	if got := counterValue(t, p.reg, "eventfold_dlq_records_total", "reason", processor.ReasonWrongPartition); got != 1 {
		t.Errorf("wrong_partition dead letters = %v, want 1", got)
	}
	if got := sumCounter(t, p.reg, "eventfold_processor_restarts_total"); got != 0 {
		t.Errorf("processor restarted %v times on bad input", got)
	}
}

// produceMixed produces records one by one, in order. Records with a
// partition other than 0 go there; the others go where Kafka's Java
// partitioner (franz-go's sticky key partitioner) sends their key.
func (p *pipeline) produceMixed(t *testing.T, records []*kgo.Record) {
	t.Helper()
	cl := newProducer(t, p.broker, p.topics.Events, kgo.ProducerBatchMaxBytes(2<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	byKey := kgo.StickyKeyPartitioner(nil).ForTopic(p.topics.Events)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range records {
		if r.Partition == 0 && r.Key != nil {
			r.Partition = int32(byKey.Partition(r, int(p.topics.Partitions)))
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("failed to produce: %v", err)
		}
	}
}

// readDeadLetters reads the dead-letter topic from the start until it
// holds n records or timeout passed, and returns what it read: a caller
// may want to know which are missing before it fails.
func (p *pipeline) readDeadLetters(t *testing.T, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	// Room for the largest poison records, which are dead-lettered whole
	// or nearly.
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.broker), kgo.ConsumeTopics(p.topics.DeadLetter()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(8<<20))
	if err != nil {
		t.Fatalf("failed to create kgo consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		fetches.EachError(func(topic string, part int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("fetch %s/%d: %v", topic, part, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// matchDeadLetter finds the dead letter of the original record: same key,
// and the same value or, when truncated, a prefix of it.
func matchDeadLetter(dlq []*kgo.Record, original *kgo.Record) *kgo.Record {
	for _, r := range dlq {
		if string(r.Key) != string(original.Key) {
			continue
		}
		if string(r.Value) == string(original.Value) ||
			headers(r)[processor.HeaderTruncated] != "" && strings.HasPrefix(string(original.Value), string(r.Value)) {
			return r
		}
	}
	return nil
}

func headers(r *kgo.Record) map[string]string {
	out := map[string]string{}
	for _, h := range r.Headers {
		out[h.Key] = string(h.Value)
	}
	return out
}

func sumCounter(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func counterValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

func TestPipelineReadYourWritesWaitsForVersion(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	register := func(id string) *kgo.Record {
		return &kgo.Record{Key: []byte(id), Value: []byte(fmt.Sprintf(
			`{"specversion":"1.0","id":"reg-%s","source":"/test","type":"customer.registered","data":{"name":"N","email":"n@example.com"}}`, id))}
	}
	rename := func(id, name string) *kgo.Record {
		return &kgo.Record{Key: []byte(id), Value: []byte(fmt.Sprintf(
			`{"specversion":"1.0","id":"ren-%s-%s","source":"/test","type":"customer.renamed","data":{"name":%q}}`, id, name, name))}
	}
	p.produce(t, register("ryw-1"))

	// A reader that knows version 2 is coming waits for it.
	type result struct {
		status int
		c      *processor.Customer
		took   time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		status, c := p.client.Customer(t, "ryw-1", "min_version=2&wait=10s")
		done <- result{status, c, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond)
	p.produce(t, rename("ryw-1", "Second"))
	r := <-done
	if r.status != http.StatusOK || r.c == nil || r.c.Version < 2 || r.c.Name != "Second" {
		t.Fatalf("min_version=2: status %d, state %+v", r.status, r.c)
	}
	if r.took < 250*time.Millisecond {
		t.Errorf("answered after %s, before version 2 was produced", r.took)
	}

	// A version that never comes times out with 504 and the current version.
	status, body := p.client.Get(t, p.client.Base+"/customers/ryw-1?min_version=9&wait=300ms")
	var e struct {
		Error   string `json:"error"`
		Version int64  `json:"version"`
	}
	if err := json.Unmarshal(body, &e); err != nil || status != http.StatusGatewayTimeout || e.Error != "wait_timeout" || e.Version != 2 {
		t.Errorf("min_version=9: status %d body %s, want 504 wait_timeout with version 2", status, body)
	}
	// A customer that does not exist yet can be waited for too.
	go func() {
		time.Sleep(200 * time.Millisecond)
		p.produce(t, register("ryw-2"))
	}()
	if status, c := p.client.Customer(t, "ryw-2", "min_version=1&wait=10s"); status != http.StatusOK || c.Version != 1 {
		t.Errorf("waiting for a new customer: status %d, state %+v", status, c)
	}
}

func TestHTTPErrorsAreJSON4xx(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	long := strings.Repeat("a", 129)
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"unknown customer", "GET", "/customers/nobody", 404, "not_found"},
		{"invalid id", "GET", "/customers/bad%20id", 400, "invalid_id"},
		{"id too long", "GET", "/customers/" + long, 400, "invalid_id"},
		{"negative min_version", "GET", "/customers/x?min_version=-1", 400, "invalid_parameter"},
		{"text min_version", "GET", "/customers/x?min_version=abc", 400, "invalid_parameter"},
		{"bad wait", "GET", "/customers/x?min_version=1&wait=forever", 400, "invalid_parameter"},
		{"negative wait", "GET", "/customers/x?min_version=1&wait=-1s", 400, "invalid_parameter"},
		{"zero limit", "GET", "/customers?limit=0", 400, "invalid_parameter"},
		{"text limit", "GET", "/customers?limit=ten", 400, "invalid_parameter"},
		{"bad after", "GET", "/customers?after=%2F%2F", 400, "invalid_parameter"},
		{"unknown route", "GET", "/nothing/here", 404, "not_found"},
		{"wrong method", "DELETE", "/customers/x", 405, "method_not_allowed"},
		{"wrong method on list", "PUT", "/customers", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, p.client.Base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := p.client.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if resp.StatusCode != tt.status || body.Error != tt.code {
				t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, resp.StatusCode, body.Error, tt.status, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if got := sumCounter(t, p.reg, "eventfold_http_requests_total"); got < float64(len(tests)) {
		t.Errorf("eventfold_http_requests_total = %v, want at least %d", got, len(tests))
	}
}
