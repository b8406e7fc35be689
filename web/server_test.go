package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
)

// Tokens of the tests that guard the API.
const (
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
)

// client is the address httptest.NewRequest gives every request, which
// the per-client bounds count.
const client = "192.0.2.1"

func newServer(t *testing.T, tb *table, edit func(*Config, *Deps)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	deps := Deps{Lookups: tb, Publisher: tb, History: tb, Subscriber: tb.hub}
	if edit != nil {
		edit(&cfg, &deps)
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, deps, reg, reg)
	if err != nil {
		t.Fatalf("failed to build the server: %v", err)
	}
	return s
}

// request is one request to the server's handler.
type request struct {
	method, target, body string
	header               map[string]string
}

func (r request) do(t *testing.T, s *Server) *httptest.ResponseRecorder {
	t.Helper()
	method := cmpString(r.method, http.MethodGet)
	req := httptest.NewRequest(method, r.target, strings.NewReader(r.body))
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

func cmpString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// post is a write of an event to customer id.
func post(id, body string, header ...string) request {
	r := request{method: http.MethodPost, target: "/customers/" + id + "/events?wait=1s", body: body, header: map[string]string{}}
	for i := 0; i+1 < len(header); i += 2 {
		r.header[header[i]] = header[i+1]
	}
	return r
}

const (
	register = `{"type":"customer.registered","data":{"name":"Ada Lovelace","email":"ada@example.com"}}`
	rename   = `{"type":"customer.renamed","data":{"name":"Ada King"}}`
)

// seed registers c-1 and renames it: c-1 is at version 2.
func seed(t *testing.T, s *Server) {
	t.Helper()
	for _, body := range []string{register, rename} {
		if rec := post("c-1", body).do(t, s); rec.Code != http.StatusCreated {
			t.Fatalf("seed: %d %s", rec.Code, rec.Body)
		}
	}
}

// checkError asserts the API's error answer: status, JSON with nosniff,
// and a body of exactly error and message (and version where it belongs).
func checkError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no X-Content-Type-Options: nosniff")
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, rec.Body)
	}
	var got, message string
	_ = json.Unmarshal(body["error"], &got)
	_ = json.Unmarshal(body["message"], &message)
	if got != code {
		t.Errorf("error %q, want %q", got, code)
	}
	if message == "" {
		t.Errorf("no message: %s", rec.Body)
	}
	for k := range body {
		if k != "error" && k != "message" && k != "version" {
			t.Errorf("unexpected field %q in %s", k, rec.Body)
		}
	}
}

// TestStatuses sends each handler the requests that make it answer each
// of its status codes, against a table in the states that cause them.
func TestStatuses(t *testing.T) {
	tooLong := strings.Repeat("a", processor.MaxKeyLength+1)
	unavailable := errors.New("broker went away")
	holdSlot := func(kind func(*Server) *slots, addr string) func(*table, *Server) {
		return func(_ *table, s *Server) {
			if _, err := kind(s).acquire(addr); err != nil {
				t.Fatalf("failed to take a slot: %v", err)
			}
		}
	}
	waiters := func(s *Server) *slots { return s.waiters }
	histories := func(s *Server) *slots { return s.histories }
	watchers := func(s *Server) *slots { return s.watchers }
	oneEach := func(c *Config, _ *Deps) {
		c.MaxWaitersPerClient, c.MaxHistoryReadsPerClient, c.MaxWatchersPerClient = 1, 1, 1
	}
	oneInAll := func(c *Config, _ *Deps) { c.MaxWaiters, c.MaxHistoryReads = 1, 1 }
	guarded := func(c *Config, _ *Deps) { c.ReadTokens, c.WriteTokens = []string{readToken}, []string{writeToken} }
	bearer := func(token string) map[string]string { return map[string]string{"Authorization": "Bearer " + token} }
	tests := []struct {
		name   string
		req    request
		config func(*Config, *Deps)
		setup  func(*table, *Server)
		status int
		code   string // the error code; empty for an answer that is not an error
	}{
		// GET /customers/{id}
		{name: "get", req: request{target: "/customers/c-1"}, status: 200},
		{name: "get too long id", req: request{target: "/customers/" + tooLong}, status: 400, code: "invalid_id"},
		{name: "get id with a star", req: request{target: "/customers/a*b"}, status: 400, code: "invalid_id"},
		{name: "get unknown", req: request{target: "/customers/nobody"}, status: 404, code: "not_found"},
		{name: "get decisions only", req: request{target: "/customers/c-9"}, setup: func(tb *table, s *Server) {
			post("c-9", rename).do(t, s) // rejected: an entry with a decision and version 0
		}, status: 404, code: "not_found"},
		{name: "get not recovered", req: request{target: "/customers/c-1"}, setup: func(tb *table, _ *Server) { tb.recovered = false }, status: 503, code: "not_ready"},
		{name: "get view fails", req: request{target: "/customers/c-1"}, setup: func(tb *table, _ *Server) { tb.readErr = unavailable }, status: 503, code: "view_unavailable"},
		{name: "min_version reached", req: request{target: "/customers/c-1?min_version=2"}, status: 200},
		{name: "min_version not reached", req: request{target: "/customers/c-1?min_version=3&wait=10ms"}, status: 504, code: "wait_timeout"},
		{name: "min_version of unknown", req: request{target: "/customers/nobody?min_version=1&wait=10ms"}, status: 504, code: "wait_timeout"},
		{name: "min_version negative", req: request{target: "/customers/c-1?min_version=-1"}, status: 400, code: "invalid_parameter"},
		{name: "min_version not a number", req: request{target: "/customers/c-1?min_version=two"}, status: 400, code: "invalid_parameter"},
		{name: "min_version waiters full", req: request{target: "/customers/c-1?min_version=1"}, config: oneInAll, setup: holdSlot(waiters, "198.51.100.7"), status: 503, code: "too_many_waiters"},
		{name: "min_version client over its share", req: request{target: "/customers/c-1?min_version=1"}, config: oneEach, setup: holdSlot(waiters, client), status: 429, code: "too_many_requests"},
		{name: "wait in seconds", req: request{target: "/customers/c-1?min_version=1&wait=0.5"}, status: 200},
		{name: "wait huge is capped", req: request{target: "/customers/c-1?min_version=1&wait=1e300"}, status: 200},
		{name: "wait not a duration", req: request{target: "/customers/c-1?wait=soon"}, status: 400, code: "invalid_parameter"},
		{name: "wait negative duration", req: request{target: "/customers/c-1?wait=-1s"}, status: 400, code: "invalid_parameter"},
		{name: "wait negative seconds", req: request{target: "/customers/c-1?wait=-1"}, status: 400, code: "invalid_parameter"},
		{name: "wait NaN", req: request{target: "/customers/c-1?wait=NaN"}, status: 400, code: "invalid_parameter"},
		{name: "wait infinite", req: request{target: "/customers/c-1?wait=Inf"}, status: 400, code: "invalid_parameter"},
		{name: "delete", req: request{method: http.MethodDelete, target: "/customers/c-1"}, status: 405, code: "method_not_allowed"},
		{name: "no such route", req: request{target: "/nowhere"}, status: 404, code: "not_found"},

		// GET /customers/{id}?version= and ?at=
		{name: "version", req: request{target: "/customers/c-1?version=1"}, status: 200},
		{name: "version zero", req: request{target: "/customers/c-1?version=0"}, status: 400, code: "invalid_parameter"},
		{name: "version not a number", req: request{target: "/customers/c-1?version=v1"}, status: 400, code: "invalid_parameter"},
		{name: "version not yet", req: request{target: "/customers/c-1?version=9"}, status: 404, code: "version_not_found"},
		{name: "version of unknown", req: request{target: "/customers/nobody?version=1"}, status: 404, code: "not_found"},
		{name: "version and at", req: request{target: "/customers/c-1?version=1&at=2030-01-01T00:00:00Z"}, status: 400, code: "invalid_parameter"},
		{name: "at", req: request{target: "/customers/c-1?at=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, status: 200},
		{name: "at before the first event", req: request{target: "/customers/c-1?at=2000-01-01T00:00:00Z"}, status: 404, code: "version_not_found"},
		{name: "at not a time", req: request{target: "/customers/c-1?at=yesterday"}, status: 400, code: "invalid_parameter"},
		{name: "version truncated", req: request{target: "/customers/c-1?version=1"}, setup: func(tb *table, _ *Server) { tb.historyErr = views.ErrHistoryTruncated }, status: 410, code: "history_truncated"},
		{name: "version kafka fails", req: request{target: "/customers/c-1?version=1"}, setup: func(tb *table, _ *Server) { tb.historyErr = unavailable }, status: 503, code: "kafka_unavailable"},
		{name: "version without history", req: request{target: "/customers/c-1?version=1"}, config: func(_ *Config, d *Deps) { d.History = nil }, status: 501, code: "no_history"},
		{name: "version history reads full", req: request{target: "/customers/c-1?version=1"}, config: oneInAll, setup: holdSlot(histories, "198.51.100.7"), status: 503, code: "too_many_history_reads"},
		{name: "version client over its share", req: request{target: "/customers/c-1?version=1"}, config: oneEach, setup: holdSlot(histories, client), status: 429, code: "too_many_requests"},

		// GET /customers
		{name: "list", req: request{target: "/customers"}, status: 200},
		{name: "list search", req: request{target: "/customers?q=ADA&status=active&limit=5000"}, status: 200},
		{name: "list after", req: request{target: "/customers?after=c-0"}, status: 200},
		{name: "list after not an id", req: request{target: "/customers?after=a*b"}, status: 400, code: "invalid_parameter"},
		{name: "list limit zero", req: request{target: "/customers?limit=0"}, status: 400, code: "invalid_parameter"},
		{name: "list limit not a number", req: request{target: "/customers?limit=many"}, status: 400, code: "invalid_parameter"},
		{name: "list q too long", req: request{target: "/customers?q=" + strings.Repeat("x", maxSearch+1)}, status: 400, code: "invalid_parameter"},
		{name: "list status unknown", req: request{target: "/customers?status=gone"}, status: 400, code: "invalid_parameter"},
		{name: "list not recovered", req: request{target: "/customers"}, setup: func(tb *table, _ *Server) { tb.recovered = false }, status: 503, code: "not_ready"},
		{name: "list view fails", req: request{target: "/customers"}, setup: func(tb *table, _ *Server) { tb.readErr = unavailable }, status: 503, code: "view_unavailable"},

		// POST /customers/{id}/events
		{name: "write", req: post("c-2", register), status: 201},
		{name: "write cloudevents", req: post("c-2", register, "Content-Type", "application/cloudevents+json"), status: 201},
		{name: "write If-Match", req: post("c-1", rename, "If-Match", `"2"`), status: 201},
		{name: "write If-Match weak", req: post("c-1", rename, "If-Match", `W/"2"`), status: 201},
		{name: "write If-Match bare", req: post("c-1", rename, "If-Match", `2`), status: 201},
		{name: "write If-Match stale", req: post("c-1", rename, "If-Match", `"1"`), status: 409, code: "version_conflict"},
		{name: "write If-Match not a version", req: post("c-1", rename, "If-Match", `"two"`), status: 400, code: "malformed"},
		{name: "write If-Match negative", req: post("c-1", rename, "If-Match", `"-1"`), status: 400, code: "malformed"},
		{name: "write If-Match signed", req: post("c-1", rename, "If-Match", `"+2"`), status: 400, code: "malformed"},
		{name: "write If-Match against expectedversion", req: post("c-1", `{"type":"customer.renamed","expectedversion":1,"data":{"name":"A"}}`, "If-Match", `"2"`), status: 400, code: "malformed"},
		{name: "write duplicate", req: post("c-1", `{"id":"e-1","type":"customer.renamed","data":{"name":"B"}}`), setup: func(_ *table, s *Server) {
			post("c-1", `{"id":"e-1","type":"customer.renamed","data":{"name":"B"}}`).do(t, s)
		}, status: 200},
		{name: "write not registered", req: post("c-9", rename), status: 422, code: processor.ReasonNotRegistered},
		{name: "write invalid", req: post("c-1", `{"type":"customer.email_changed","data":{"email":"no at sign"}}`), status: 422, code: processor.ReasonInvalid},
		{name: "write undecided", req: request{method: http.MethodPost, target: "/customers/c-1/events?wait=10ms", body: rename}, setup: func(tb *table, _ *Server) { tb.held = true }, status: 202},
		{name: "write not an object", req: post("c-1", `[]`), status: 400, code: "malformed"},
		{name: "write two values", req: post("c-1", rename+rename), status: 400, code: "malformed"},
		{name: "write unknown type", req: post("c-1", `{"type":"customer.promoted","data":{}}`), status: 400, code: "malformed"},
		{name: "write other subject", req: post("c-1", `{"type":"customer.renamed","subject":"c-2","data":{"name":"A"}}`), status: 400, code: "malformed"},
		{name: "write bad id", req: post("a*b", register), status: 400, code: "invalid_id"},
		{name: "write bad wait", req: request{method: http.MethodPost, target: "/customers/c-1/events?wait=soon", body: rename}, status: 400, code: "invalid_parameter"},
		{name: "write text", req: post("c-1", rename, "Content-Type", "text/plain"), status: 415, code: "unsupported_media_type"},
		{name: "write latin-1", req: post("c-1", rename, "Content-Type", "application/json; charset=latin1"), status: 415, code: "unsupported_media_type"},
		{name: "write too large", req: post("c-1", strings.Repeat(" ", processor.MaxEventBytes+1)), status: 413, code: "too_large"},
		{name: "write read only", req: post("c-1", rename), config: func(_ *Config, d *Deps) { d.Publisher = nil }, status: 405, code: "read_only"},
		{name: "write not recovered", req: post("c-1", rename), setup: func(tb *table, _ *Server) { tb.recovered = false }, status: 503, code: "not_ready"},
		{name: "write kafka fails", req: post("c-1", rename), setup: func(tb *table, _ *Server) { tb.publishErr = unavailable }, status: 503, code: "kafka_unavailable"},
		{name: "write duplicate check fails", req: post("c-1", rename), setup: func(tb *table, _ *Server) { tb.entryErr = unavailable }, status: 201},
		{name: "write waiters full", req: post("c-1", rename), config: oneInAll, setup: holdSlot(waiters, "198.51.100.7"), status: 503, code: "too_many_waiters"},
		{name: "write client over its share", req: post("c-1", rename), config: oneEach, setup: holdSlot(waiters, client), status: 429, code: "too_many_requests"},
		{name: "write from another origin", req: post("c-1", rename, "Sec-Fetch-Site", "cross-site"), status: 403, code: "cross_origin"},

		// GET /customers/{id}/events
		{name: "events", req: request{target: "/customers/c-1/events?after_version=1&limit=1"}, status: 200},
		{name: "events after_version negative", req: request{target: "/customers/c-1/events?after_version=-1"}, status: 400, code: "invalid_parameter"},
		{name: "events after_version not a number", req: request{target: "/customers/c-1/events?after_version=first"}, status: 400, code: "invalid_parameter"},
		{name: "events limit zero", req: request{target: "/customers/c-1/events?limit=0"}, status: 400, code: "invalid_parameter"},
		{name: "events of unknown", req: request{target: "/customers/nobody/events"}, status: 404, code: "not_found"},
		{name: "events bad id", req: request{target: "/customers/a*b/events"}, status: 400, code: "invalid_id"},
		{name: "events without history", req: request{target: "/customers/c-1/events"}, config: func(_ *Config, d *Deps) { d.History = nil }, status: 501, code: "no_history"},
		{name: "events not recovered", req: request{target: "/customers/c-1/events"}, setup: func(tb *table, _ *Server) { tb.recovered = false }, status: 503, code: "not_ready"},
		{name: "events view fails", req: request{target: "/customers/c-1/events"}, setup: func(tb *table, _ *Server) { tb.readErr = unavailable }, status: 503, code: "view_unavailable"},
		{name: "events kafka fails", req: request{target: "/customers/c-1/events"}, setup: func(tb *table, _ *Server) { tb.historyErr = unavailable }, status: 503, code: "kafka_unavailable"},

		// GET /customers/{id}/watch and /watch; a stream's 200 is TestWatch's.
		{name: "watch head", req: request{method: http.MethodHead, target: "/watch"}, status: 200},
		{name: "watch bad id", req: request{target: "/customers/a*b/watch"}, status: 400, code: "invalid_id"},
		{name: "watch Last-Event-ID too long", req: request{target: "/customers/c-1/watch", header: map[string]string{"Last-Event-ID": strings.Repeat("0", 1025)}}, status: 400, code: "invalid_parameter"},
		{name: "watch off", req: request{target: "/watch"}, config: func(_ *Config, d *Deps) { d.Subscriber = nil }, status: 501, code: "no_watch"},
		{name: "watch not recovered", req: request{target: "/customers/c-1/watch"}, setup: func(tb *table, _ *Server) { tb.recovered = false }, status: 503, code: "not_ready"},
		{name: "watch client over its share", req: request{target: "/watch"}, config: oneEach, setup: holdSlot(watchers, client), status: 429, code: "too_many_requests"},
		{name: "watch all, the table cannot be followed", req: request{target: "/watch"}, config: func(_ *Config, d *Deps) { d.Changes = failingFeed{unavailable} }, status: 503, code: "watch_unavailable"},

		// Tokens.
		{name: "read without token", req: request{target: "/customers/c-1"}, config: guarded, status: 401, code: "unauthorized"},
		{name: "read with unknown token", req: request{target: "/customers/c-1", header: bearer("not-a-token-0123456789")}, config: guarded, status: 403, code: "forbidden"},
		{name: "read with read token", req: request{target: "/customers/c-1", header: bearer(readToken)}, config: guarded, status: 200},
		{name: "read with write token", req: request{target: "/customers/c-1", header: bearer(writeToken)}, config: guarded, status: 200},
		{name: "write with read token", req: post("c-1", rename, "Authorization", "Bearer "+readToken), config: guarded, status: 403, code: "forbidden"},
		{name: "write basic auth", req: post("c-1", rename, "Authorization", "Basic "+writeToken), config: guarded, status: 401, code: "unauthorized"},
		{name: "health without token", req: request{target: "/healthz"}, config: guarded, status: 200},

		// Probes and documents.
		{name: "ready", req: request{target: "/readyz"}, status: 200},
		{name: "metrics", req: request{target: "/metrics"}, status: 200},
		{name: "openapi", req: request{target: "/openapi.yaml"}, status: 200},
		{name: "page panics", req: request{target: "/boom"}, config: func(_ *Config, d *Deps) {
			d.Pages = []Page{{Pattern: "/boom", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })}}
		}, status: 500, code: "internal"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tb := newTable()
			s := newServer(t, tb, nil)
			seed(t, s)
			if test.config != nil {
				// The same table behind a server built another way.
				s = newServer(t, tb, test.config)
			}
			if test.setup != nil {
				test.setup(tb, s)
			}
			rec := test.req.do(t, s)
			if test.code != "" {
				checkError(t, rec, test.status, test.code)
				return
			}
			if rec.Code != test.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, test.status, rec.Body)
			}
		})
	}
}

// failingFeed is a ChangeFeed that cannot follow the table.
type failingFeed struct{ err error }

func (f failingFeed) SubscribeAll(context.Context) (*views.Subscription, error) { return nil, f.err }
