package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serve mounts the pages on a mux as web.New does, without the API.
func serve(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	mux := http.NewServeMux()
	pages, err := Pages(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		mux.Handle(p.Pattern, p.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req := testkit.Request(t, http.MethodGet, url)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, body := testkit.Do(t, http.DefaultClient, req)
	return resp, string(body)
}

func TestStaticFiles(t *testing.T) {
	srv := serve(t, Config{Topics: kafka.Topics{Events: "events", Group: "customers"}})
	tests := []struct {
		name, path  string
		status      int
		contentType string
		contains    string
	}{
		{"page at the root", "/", 200, "text/html; charset=utf-8", `<script type="module" src="ui/app.js">`},
		{"script", "/ui/app.js", 200, "text/javascript; charset=utf-8", "hashchange"},
		{"style", "/ui/app.css", 200, "text/css; charset=utf-8", ":root"},
		{"icon", "/ui/icon.svg", 200, "image/svg+xml", "<svg"},
		{"page only at the root", "/ui/index.html", 404, "application/json", `"not_found"`},
		{"unknown file", "/ui/nothing.js", 404, "application/json", `"not_found"`},
		{"folder", "/ui/", 404, "application/json", `"not_found"`},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+test.path)
			if resp.StatusCode != test.status || resp.Header.Get("Content-Type") != test.contentType || !strings.Contains(body, test.contains) {
				t.Errorf("GET %s: %d %q, want %d %q containing %q", test.path, resp.StatusCode, resp.Header.Get("Content-Type"), test.status, test.contentType, test.contains)
			}
		})
	}

	resp, _ := get(t, srv.URL+"/")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("the page's Content-Security-Policy %q must keep everything to the server", csp)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("the page has no ETag")
	}
	if again, _ := get(t, srv.URL+"/", "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
		t.Errorf("GET / with its ETag: %d, want 304", again.StatusCode)
	}
}

// TestPageFetchesNothingOutside reads the page's own files: every URL
// they load must be relative, served by the binary.
func TestPageFetchesNothingOutside(t *testing.T) {
	a := newAssets(static, "static", "/ui/")
	if len(a.files) < 5 {
		t.Fatalf("only %d static files embedded", len(a.files))
	}
	for name, f := range a.files {
		body := string(f.body)
		for _, outside := range []string{"http://", "https://", "//cdn", "@import"} {
			// XML namespaces are names, not addresses anything is fetched from.
			if i := strings.Index(body, outside); i >= 0 && !strings.HasPrefix(body[i+len(outside):], "www.w3.org/2000/svg") {
				t.Errorf("%s refers to %q: %.80s", name, outside, body[i:])
			}
		}
	}
}

// TestPagesAskForAccess checks the access each page asks the server for:
// the handlers that show records (dead letters with their raw values,
// goka's pages with the table's entries) are reads; the page and the
// static files are open. The server enforces it with the API's own token
// check (e2e: TestAccessMatrix).
func TestPagesAskForAccess(t *testing.T) {
	want := map[string]web.Access{
		"/{$}": web.Open, "/ui/": web.Open, gokaAssetsBase: web.Open,
		"/ui/api/dead-letters": web.Read, "/goka/": web.Read, "/ui/api/dead-letters/replay": web.Write,
	}
	pages, err := Pages(Config{Topics: kafka.Topics{Events: "events", Group: "customers"}, Logger: quiet, Replayer: &kafka.Publisher{}, DeadLetters: &kafka.OffsetReader{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != len(want) {
		t.Errorf("%d pages, want %d", len(pages), len(want))
	}
	for _, p := range pages {
		if access, ok := want[p.Pattern]; !ok || p.Access != access {
			t.Errorf("page %s asks for access %d, want %d", p.Pattern, p.Access, access)
		}
	}
}

func TestMonitorIndexInRange(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/goka/monitor/", true},
		{"/goka/monitor/processor/0", true},
		{"/goka/monitor/processor/1", false},
		{"/goka/monitor/processor/-1", false},
		{"/goka/monitor/view/0", false},
		{"/goka/monitor/data/processor/0", true},
		{"/goka/monitor/data/processor/1", false},
		{"/goka/monitor/data/view/0", false},
		{"/goka/monitor/processor/x", true}, // goka answers 404 itself
		{"/goka/query/processor/7", true},
	}
	for _, test := range tests {
		if got := monitorIndexInRange(test.path, 1, 0); got != test.want {
			t.Errorf("monitorIndexInRange(%q, 1 processor, 0 views) = %v, want %v", test.path, got, test.want)
		}
	}
}

func TestGokaPagesWithoutGokaObjects(t *testing.T) {
	srv := serve(t, Config{Topics: kafka.Topics{Events: "events", Group: "customers"}})
	for path, want := range map[string]int{
		"/goka/":                    200,
		"/goka/monitor/":            200,
		"/goka/monitor/processor/0": 404,
		"/goka/query/":              200,
		"/goka/elsewhere":           404,
	} {
		if resp, body := get(t, srv.URL+path); resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d: %.200s", path, resp.StatusCode, want, body)
		}
	}
}

func TestPreview(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		n      int
		text   string
		binary bool
	}{
		{"short text", []byte(`{"a":1}`), 10, `{"a":1}`, false},
		{"cut text", []byte("abcdef"), 3, "abc", false},
		{"cut at a rune boundary", []byte("aé"), 2, "a", false},
		{"binary", []byte{0xff, 0x00, 'a', 'b'}, 16, `\xff\x00ab`, true},
		{"empty", nil, 10, "", false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			got := preview(test.in, test.n)
			if got.text != test.text || got.binary != test.binary {
				t.Errorf("preview(%q, %d) = %q binary %v, want %q binary %v", test.in, test.n, got.text, got.binary, test.text, test.binary)
			}
		})
	}
}

func TestDeadLettersReadsTheLatestNewestFirst(t *testing.T) {
	b, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0", Partitions: 2})
	if err != nil {
		t.Fatalf("failed to start kfake: %v", err)
	}
	t.Cleanup(b.Close)
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{b.Addr()}
	topics := kafka.Topics{Events: "events", Group: "customers"}
	srv := serve(t, Config{DeadLetters: deadLetterReader(t, kc, topics), Topics: topics})

	// No topic yet: no dead letters, not an error.
	if resp, body := get(t, srv.URL+"/ui/api/dead-letters"); resp.StatusCode != 200 || !strings.Contains(body, `"total":0`) {
		t.Fatalf("before any dead letter: %d %s", resp.StatusCode, body)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topics.DeadLetter()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, topics.DeadLetter()); err != nil {
		t.Fatalf("failed to create %s: %v", topics.DeadLetter(), err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 30
	for i := range n {
		r := &kgo.Record{
			Partition: int32(i % 2),
			Key:       []byte(fmt.Sprintf("cust-%02d", i)),
			Value:     []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Timestamp: base.Add(time.Duration(i) * time.Second),
			Headers: []kgo.RecordHeader{
				{Key: processor.HeaderReason, Value: []byte(processor.ReasonMalformed)},
				{Key: processor.HeaderError, Value: []byte(fmt.Sprintf("malformed event %d", i))},
				{Key: processor.HeaderTopic, Value: []byte("events")},
				{Key: processor.HeaderPartition, Value: []byte("3")},
				{Key: processor.HeaderOffset, Value: []byte(fmt.Sprint(100 + i))},
			},
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("failed to produce: %v", err)
		}
	}

	resp, body := get(t, srv.URL+"/ui/api/dead-letters?limit=5")
	if resp.StatusCode != 200 {
		t.Fatalf("GET dead letters: %d %s", resp.StatusCode, body)
	}
	var page deadLetterPage
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if page.Total != n || page.Topic != "events.dlq" || len(page.Records) != 5 {
		t.Fatalf("total %d topic %q records %d, want %d events.dlq 5", page.Total, page.Topic, len(page.Records), n)
	}
	for i, r := range page.Records {
		want := n - 1 - i
		if r.Key != fmt.Sprintf("cust-%02d", want) || r.Reason != processor.ReasonMalformed ||
			r.Error != fmt.Sprintf("malformed event %d", want) || r.Source != fmt.Sprintf("events/3@%d", 100+want) ||
			r.Value != fmt.Sprintf(`{"n":%d}`, want) || !r.Time.Equal(base.Add(time.Duration(want)*time.Second)) {
			t.Errorf("record %d = %+v, want the dead letter of cust-%02d", i, r, want)
		}
	}

	for _, bad := range []string{"0", "101", "x"} {
		if resp, _ := get(t, srv.URL+"/ui/api/dead-letters?limit="+bad); resp.StatusCode != 400 {
			t.Errorf("limit=%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

// deadLetterReader connects the reader the service injects, closed with
// the test.
func deadLetterReader(t *testing.T, kc kafka.Config, topics kafka.Topics) *kafka.OffsetReader {
	t.Helper()
	r, err := kafka.NewDeadLetterReader(kc, topics.DeadLetter())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// The broker goes away after the reader connected: the page answers 503.
func TestDeadLettersWithoutKafka(t *testing.T) {
	b, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0", Partitions: 1})
	if err != nil {
		t.Fatalf("failed to start kfake: %v", err)
	}
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{b.Addr()}
	topics := kafka.Topics{Events: "events", Group: "customers"}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topics.DeadLetter()); err != nil {
		t.Fatalf("failed to create %s: %v", topics.DeadLetter(), err)
	}
	cl.Close()
	srv := serve(t, Config{DeadLetters: deadLetterReader(t, kc, topics), Topics: topics})
	b.Close()
	resp, body := get(t, srv.URL+"/ui/api/dead-letters")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "kafka_unavailable") {
		t.Errorf("without Kafka: %d %s, want 503 kafka_unavailable", resp.StatusCode, body)
	}
}
