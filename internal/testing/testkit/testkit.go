// Package testkit holds helpers shared by eventfold's end-to-end tests:
// a reference fold of an event file, HTTP reads of customer state and
// comparisons. It is imported by tests only.
package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/processor"
)

// RepoRoot returns the repository root, found from this file's location.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the testkit source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// SampleFile is the path of the sample event file shipped in the repo.
func SampleFile(t testing.TB) string {
	return filepath.Join(RepoRoot(t), "samples", "customer-events.jsonl")
}

// Line is one event line of a JSON-lines file.
type Line struct {
	Key   string
	Value []byte
}

// ReadLines reads a JSON-lines event file; the key of each is its subject.
func ReadLines(t testing.TB, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("failed to open %s: %v", path, err)
	}
	defer f.Close()
	return ParseLines(t, f)
}

// ParseLines reads JSON-lines events from r.
func ParseLines(t testing.TB, r io.Reader) []Line {
	t.Helper()
	var out []Line
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		raw := bytes.TrimSpace(s.Bytes())
		if len(raw) == 0 {
			continue
		}
		ev, err := processor.DecodeValue(raw)
		if err != nil {
			t.Fatalf("sample line %d is not a valid event: %v", len(out)+1, err)
		}
		out = append(out, Line{Key: ev.Key, Value: append([]byte(nil), raw...)})
	}
	if err := s.Err(); err != nil {
		t.Fatalf("failed to read events: %v", err)
	}
	return out
}

// ReferenceFold folds events in order with the pure fold, independent of
// Kafka: the state every customer must have once the service has folded
// the same events. Each line's index stands in for its offset, which
// preserves each key's order (all that the fold's redelivery check uses).
func ReferenceFold(t testing.TB, lines []Line) map[string]processor.Customer {
	t.Helper()
	return FoldDecisions(t, lines, nil)
}

// FoldDecisions is ReferenceFold that also hands each decision, in order,
// to decided when it is not nil.
func FoldDecisions(t testing.TB, lines []Line, decided func(processor.Decision)) map[string]processor.Customer {
	t.Helper()
	states := map[string]processor.Customer{}
	for i, l := range lines {
		ev, err := processor.Decode(l.Key, l.Value)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		ev.Offset = int64(i)
		next, d := processor.Apply(states[l.Key], ev)
		if decided != nil {
			decided(d)
		}
		if d.Outcome != processor.Duplicate {
			states[l.Key] = next
		}
	}
	return states
}

// Registered returns the ids of registered customers in a fold, sorted.
func Registered(states map[string]processor.Customer) []string {
	var ids []string
	for id, c := range states {
		if c.Registered() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Diff describes how got differs from want, ignoring NextOffset,
// decisions' offsets and History (real offsets differ from the reference
// fold's line numbers), or "" if equal.
func Diff(want, got processor.Customer) string {
	want.NextOffset, got.NextOffset = 0, 0
	want.History, got.History = processor.History{}, processor.History{}
	// A decision's offset too is the record's, not the line's.
	want.Decisions, got.Decisions = withoutOffsets(want.Decisions), withoutOffsets(got.Decisions)
	// personal_data is how a reader found the personal fields (plaintext,
	// encrypted, erased), not part of the fold.
	want.PersonalData, got.PersonalData = "", ""
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if bytes.Equal(w, g) {
		return ""
	}
	return fmt.Sprintf("want %s\n got %s", w, g)
}

func withoutOffsets(ds []processor.Decision) []processor.Decision {
	out := slices.Clone(ds)
	for i := range out {
		out[i].Offset = 0
	}
	return out
}

// Client reads eventfold's HTTP API.
type Client struct {
	Base string
	HTTP *http.Client
}

// NewClient returns a client for the server at base, e.g. http://127.0.0.1:8080.
func NewClient(base string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 40 * time.Second}}
}

// Customer fetches GET /customers/{id}. It returns the status code and,
// on 200, the state.
func (c *Client) Customer(t testing.TB, id, query string) (int, *processor.Customer) {
	t.Helper()
	url := c.Base + "/customers/" + id
	if query != "" {
		url += "?" + query
	}
	status, body := c.Get(t, url)
	if status != http.StatusOK {
		return status, nil
	}
	var cust processor.Customer
	if err := json.Unmarshal(body, &cust); err != nil {
		t.Fatalf("GET %s: invalid JSON %q: %v", url, body, err)
	}
	return status, &cust
}

// Get fetches url and returns the status code and body. A transport
// error fails the test.
func (c *Client) Get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, body := Do(t, c.HTTP, Request(t, http.MethodGet, url))
	return resp.StatusCode, body
}

// Request builds a request without a body; a bad URL fails the test.
func Request(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Do sends req with client and returns the response, its body read and
// closed. A transport error fails the test.
func Do(t testing.TB, client *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// WaitReady polls /readyz until it answers 200 or the timeout passes.
func (c *Client) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.HTTP.Get(c.Base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/readyz not 200 within %s; last answer: %s", c.Base, timeout, last)
}

// AwaitFold polls the server until every customer of want has the
// reference state (and unregistered ones are 404), or fails after timeout
// listing the differences.
func (c *Client) AwaitFold(t testing.TB, want map[string]processor.Customer, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		diffs := c.foldDiffs(t, want)
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if len(diffs) > 10 {
				diffs = append(diffs[:10], fmt.Sprintf("... and %d more", len(diffs)-10))
			}
			t.Fatalf("state differs from the reference fold after %s:\n%s", timeout, strings.Join(diffs, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *Client) foldDiffs(t testing.TB, want map[string]processor.Customer) []string {
	t.Helper()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var diffs []string
	for _, id := range ids {
		w := want[id]
		status, got := c.Customer(t, id, "")
		switch {
		case !w.Registered() && status != http.StatusNotFound:
			diffs = append(diffs, fmt.Sprintf("%s: want 404 (never registered), got %d", id, status))
		case w.Registered() && status != http.StatusOK:
			diffs = append(diffs, fmt.Sprintf("%s: want 200 at version %d, got %d", id, w.Version, status))
		case w.Registered():
			if d := Diff(w, *got); d != "" {
				diffs = append(diffs, id+": "+d)
			}
		}
	}
	return diffs
}

// DiffState is Diff on the domain state alone: it also ignores the ring
// of recent decisions, which a replay of accepted events cannot rebuild
// (rejected events are not in a customer's history).
func DiffState(want, got processor.Customer) string {
	want.Decisions, got.Decisions = nil, nil
	return Diff(want, got)
}
