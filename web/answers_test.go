package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnswers checks what answers carry besides their status.
func TestAnswers(t *testing.T) {
	tests := []struct {
		name  string
		req   request
		setup func(*table, *Server)
		// header and body hold what the answer must contain.
		header map[string]string
		body   []string
	}{
		{name: "get", req: request{target: "/customers/c-1"}, header: map[string]string{"ETag": `"2"`},
			body: []string{`"id":"c-1"`, `"version":2`, `"name":"Ada King"`}},
		{name: "get leaves out the history", req: request{target: "/customers/c-1?min_version=2"}, header: map[string]string{"ETag": `"2"`},
			body: []string{`"version":2`}},
		{name: "version", req: request{target: "/customers/c-1?version=1"}, header: map[string]string{"ETag": `"1"`},
			body: []string{`"version":1`, `"name":"Ada Lovelace"`}},
		{name: "wait timeout tells the version", req: request{target: "/customers/c-1?min_version=5&wait=10ms"}, body: []string{`"version":2`}},
		{name: "conflict tells the version", req: post("c-1", rename, "If-Match", `"1"`), body: []string{`"version":2`}},
		{name: "write", req: post("c-1", rename), header: map[string]string{"ETag": `"3"`, "Location": "/customers/c-1"},
			body: []string{`"version":3`, `"name":"Ada King"`}},
		{name: "write If-Match sets expectedversion", req: post("c-1", rename, "If-Match", `W/"2"`), header: map[string]string{"ETag": `"3"`}},
		{name: "duplicate answers the decision", req: post("c-1", `{"id":"e-1","type":"customer.renamed","data":{"name":"B"}}`), setup: func(_ *table, s *Server) {
			post("c-1", `{"id":"e-1","type":"customer.renamed","data":{"name":"B"}}`).do(t, s)
		}, body: []string{`"event_id":"e-1"`, `"outcome":"accepted"`, `"version":3`}},
		{name: "pending", req: request{method: http.MethodPost, target: "/customers/c-1/events?wait=10ms", body: rename}, setup: func(tb *table, _ *Server) { tb.held = true },
			header: map[string]string{"Location": "/customers/c-1"}, body: []string{`"status":"pending"`, `"offset":3`}},
		{name: "search by name", req: request{target: "/customers?q=lovel"}, body: []string{`"customers":[]`}},
		{name: "search by id prefix and status", req: request{target: "/customers?q=C-&status=active"}, body: []string{`"id":"c-1"`}},
		{name: "search by status", req: request{target: "/customers?status=suspended"}, body: []string{`"customers":[]`}},
		{name: "events after a version", req: request{target: "/customers/c-1/events?after_version=1"},
			body: []string{`"version":2`, `"first_version":1`, `customer.renamed`}},
		{name: "events page", req: request{target: "/customers/c-1/events?limit=1"}, body: []string{`"version":1`, `"next_after_version":1`}},
		{name: "method not allowed", req: request{method: http.MethodPut, target: "/customers/c-1/events"}, header: map[string]string{"Allow": "GET, POST"}},
		{name: "full server asks to retry", req: post("c-1", rename), setup: func(_ *table, s *Server) {
			s.waiters.max = 0
		}, header: map[string]string{"Retry-After": "1"}},
		{name: "not ready", req: request{target: "/readyz"}, setup: func(_ *table, s *Server) {
			s.checks = []Check{{Name: "view", Ready: func() bool { return false }}}
		}, body: []string{`"ready":false`, `"missing":["view"]`}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tb := newTable()
			s := newServer(t, tb, nil)
			seed(t, s)
			if test.setup != nil {
				test.setup(tb, s)
			}
			rec := test.req.do(t, s)
			for k, v := range test.header {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
			for _, want := range test.body {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("body lacks %s: %s", want, rec.Body)
				}
			}
			if strings.Contains(rec.Body.String(), `"history"`) {
				t.Errorf("body shows the offsets of the customer's events: %s", rec.Body)
			}
		})
	}
}

func TestParseWait(t *testing.T) {
	s := &Server{cfg: Config{MaxWait: 30 * time.Second}}
	tests := []struct {
		raw     string
		def     time.Duration
		want    time.Duration
		wantErr bool
	}{
		{raw: "", want: 2 * time.Second},
		{raw: "", def: 5 * time.Second, want: 5 * time.Second},
		{raw: "", def: time.Hour, want: 30 * time.Second},
		{raw: "500ms", want: 500 * time.Millisecond},
		{raw: "0", want: 0},
		{raw: "1.5", want: 1500 * time.Millisecond},
		{raw: "1h", want: 30 * time.Second},
		{raw: "1e300", want: 30 * time.Second},
		{raw: "-1", wantErr: true},
		{raw: "-1ms", wantErr: true},
		{raw: "NaN", wantErr: true},
		{raw: "+Inf", wantErr: true},
		{raw: "soon", wantErr: true},
	}
	for _, test := range tests {
		t.Run(test.raw, func(t *testing.T) {
			got, err := s.parseWait(test.raw, test.def)
			if (err != nil) != test.wantErr || got != test.want {
				t.Fatalf("parseWait(%q, %s) = %s, %v; want %s, error %t", test.raw, test.def, got, err, test.want, test.wantErr)
			}
		})
	}
}

func TestParseIfMatch(t *testing.T) {
	tests := []struct {
		header  string
		want    int64
		wantErr bool
	}{
		{header: `"3"`, want: 3},
		{header: `W/"3"`, want: 3},
		{header: `3`, want: 3},
		{header: ` "0" `, want: 0},
		{header: `"9223372036854775807"`, want: math.MaxInt64},
		{header: `"9223372036854775808"`, wantErr: true},
		{header: `"-1"`, wantErr: true},
		{header: `"+3"`, wantErr: true},
		{header: `"3", "4"`, wantErr: true},
		{header: `*`, wantErr: true},
		{header: `""`, wantErr: true},
	}
	for _, test := range tests {
		t.Run(test.header, func(t *testing.T) {
			got, err := parseIfMatch(test.header)
			if (err != nil) != test.wantErr || got != test.want {
				t.Fatalf("parseIfMatch(%q) = %d, %v; want %d, error %t", test.header, got, err, test.want, test.wantErr)
			}
		})
	}
}

// withLog sends the server's log to b. Tests read b once the requests
// that log are done, which the handler's return orders before the read.
func withLog(b *bytes.Buffer) func(*Config, *Deps) {
	return func(c *Config, _ *Deps) { c.Logger = slog.New(slog.NewTextHandler(b, nil)) }
}

// TestDuplicateCheckFailureIsLogged: a write whose duplicate check cannot
// read the table goes on (the fold decides duplicates) and says so.
func TestDuplicateCheckFailureIsLogged(t *testing.T) {
	var logs bytes.Buffer
	tb := newTable()
	s := newServer(t, tb, withLog(&logs))
	seed(t, s)
	tb.entryErr = errors.New("leveldb went away")
	if rec := post("c-1", rename).do(t, s); rec.Code != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", rec.Code, rec.Body)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "leveldb went away") {
		t.Fatalf("the failed duplicate check was not logged at warn: %q", got)
	}
}

// TestWatch reads a customer's stream over a real connection: the
// current state first, then each change.
func TestWatch(t *testing.T) {
	tests := []struct {
		name string
		// readErr fails the read of the current state, which the stream
		// logs and goes on without.
		readErr error
		first   string
		log     string
		// lastEventID is the header of a reconnecting EventSource.
		lastEventID string
	}{
		{name: "current state first", first: `"version":2`},
		// A reconnection that has version 2 gets the changes after it;
		// one that has an older version gets the current state first.
		{name: "Last-Event-ID at the current version", lastEventID: "c-1@2", first: `"version":3`},
		{name: "Last-Event-ID of a rejection at the current version", lastEventID: "c-1@2/e-9", first: `"version":3`},
		{name: "Last-Event-ID before the current version", lastEventID: "c-1@1", first: `"version":2`},
		{name: "Last-Event-ID of another customer", lastEventID: "c-2@7", first: `"version":2`},
		{name: "failed read is logged", readErr: errors.New("leveldb went away"), first: `"version":3`, log: "leveldb went away"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			var logs bytes.Buffer
			tb := newTable()
			s := newServer(t, tb, withLog(&logs))
			seed(t, s)
			srv := httptest.NewServer(s.Handler())
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tb.mu.Lock()
			tb.readErr = test.readErr
			tb.mu.Unlock()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/customers/c-1/watch", nil)
			if test.lastEventID != "" {
				req.Header.Set("Last-Event-ID", test.lastEventID)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if test.readErr != nil {
				tb.mu.Lock()
				tb.readErr = nil
				tb.mu.Unlock()
			}
			// The publish reaches the stream through the hub, whether or
			// not the current state was sent.
			if rec := post("c-1", rename).do(t, s); rec.Code != http.StatusCreated {
				t.Fatalf("write: %d %s", rec.Code, rec.Body)
			}
			data := readData(t, bufio.NewReader(resp.Body))
			if !strings.Contains(data, test.first) {
				t.Fatalf("first frame %s, want %s", data, test.first)
			}
			// Close waits for the stream's handler to return: its log is
			// then complete.
			resp.Body.Close()
			srv.Close()
			if test.log != "" && !strings.Contains(logs.String(), test.log) {
				t.Fatalf("the failed read was not logged: %q", logs.String())
			}
		})
	}
}

// readData returns the data of the next server-sent event.
func readData(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("failed to read the stream: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var v map[string]any
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatalf("data is not JSON: %v: %s", err, data)
			}
			return data
		}
	}
}
