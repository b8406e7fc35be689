package web

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Requests that last are bounded, in total and per client, so that no
// client can hold more of the server than the operator allows: change
// streams (watchers) and requests waiting for a version or a decision
// (waiters) each hold a goroutine, a connection and a subscription to the
// view's changes; history and time-travel reads (history reads) each hold
// a page of events or a fetch response. A full server answers 503 with
// the kind that is full (too_many_watchers, too_many_waiters,
// too_many_history_reads); a client over its own share
// answers 429 too_many_requests. Both carry Retry-After.
//
// A client is its remote IP address. Behind a proxy every client has the
// proxy's address: turn the per-client bounds off there (0), or raise
// them, and let the proxy bound its clients.

// retryAfterSeconds is what Retry-After asks a refused client to wait:
// slots free up as fast as waits end, within seconds.
const retryAfterSeconds = 1

var (
	errSlotsFull  = errors.New("server full")
	errClientFull = errors.New("client over its share")
)

// slots counts the holders of one kind of lasting request.
type slots struct {
	kind      string // "watchers", "waiters" or "history reads", for messages and codes
	max       int    // in total
	perClient int    // per client address; 0 for no per-client bound

	mu       sync.Mutex
	total    int
	byClient map[string]int
}

func newSlots(kind string, maxTotal, perClient int) *slots {
	return &slots{kind: kind, max: maxTotal, perClient: perClient, byClient: map[string]int{}}
}

// acquire takes a slot for client; release gives it back and must be
// called exactly once.
func (s *slots) acquire(client string) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.max {
		return nil, errSlotsFull
	}
	if s.perClient > 0 && s.byClient[client] >= s.perClient {
		return nil, errClientFull
	}
	s.total++
	s.byClient[client]++
	var once sync.Once
	return func() { once.Do(func() { s.release(client) }) }, nil
}

func (s *slots) release(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total--
	if s.byClient[client]--; s.byClient[client] <= 0 {
		delete(s.byClient, client) // the map holds only clients with slots
	}
}

// open returns the slots held now.
func (s *slots) open() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.total)
}

// admit takes a slot of the given kind for the request's client, or
// answers the request and returns ok false.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, kind *slots) (release func(), ok bool) {
	release, err := kind.acquire(clientAddr(r))
	if err == nil {
		return release, true
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	if errors.Is(err, errClientFull) {
		writeError(w, http.StatusTooManyRequests, "too_many_requests",
			fmt.Sprintf("at most %d %s per client at a time", kind.perClient, kind.kind))
		return nil, false
	}
	writeError(w, http.StatusServiceUnavailable, "too_many_"+strings.ReplaceAll(kind.kind, " ", "_"),
		fmt.Sprintf("at most %d %s at a time", kind.max, kind.kind))
	return nil, false
}

// clientAddr is the client a request counts against: its remote IP.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// readBody reads a request body of at most limit bytes within the body
// read timeout, so a client that trickles its body cannot hold a request
// open. The server sets no ReadTimeout, which would also end change
// streams. The deadline is lifted after a whole body, since a read
// deadline that passes later cancels the request while it waits; after a
// failed read it stays, so that net/http does not wait for the rest of
// the body before it answers, and closes the connection instead.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout)) // writers without deadlines just have none
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		_ = rc.SetReadDeadline(time.Time{})
	}
	return body, err
}
