package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// limClient returns an HTTP client whose connections come from source, a
// loopback address: on Linux all of 127.0.0.0/8 reaches the test server,
// so one test can be several clients.
func limClient(t *testing.T, source string) *http.Client {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// limAnswer is a response's status, error code and Retry-After.
type limAnswer struct {
	status     int
	code       string
	retryAfter string
}

func limRead(t *testing.T, resp *http.Response) limAnswer {
	t.Helper()
	defer resp.Body.Close()
	a := limAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode >= 400 {
		var body struct {
			Error string `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("%d without a JSON error body: %v", resp.StatusCode, err)
		}
		a.code = body.Error
	}
	return a
}

func limDo(t *testing.T, c *http.Client, method, url, body string) limAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return limRead(t, resp)
}

// limWatch opens a change stream. One that is admitted stays open until
// the returned function or the test's end closes it.
func limWatch(t *testing.T, c *http.Client, url string) (limAnswer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		return limRead(t, resp), func() {}
	}
	var once sync.Once
	closeStream := func() { once.Do(func() { cancel(); resp.Body.Close() }) }
	t.Cleanup(closeStream)
	return limAnswer{status: http.StatusOK}, closeStream
}

// limHoldWaits starts n reads that wait for a version that never comes;
// they hold their slots until the returned function or the test's end.
func limHoldWaits(t *testing.T, c *http.Client, base string, n int) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// The client's own 30 s timeout would end the waits mid-test on a
	// loaded machine; the cleanup ends them instead.
	hold := *c
	hold.Timeout = 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Long enough to outlast a test on a loaded machine (the
			// test's server allows it); the cleanup ends them.
			url := fmt.Sprintf("%s/customers/lim-never-%d?min_version=1&wait=120s", base, i)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if resp, err := hold.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

// limEventually repeats probe until it answers want, for up to 10 s:
// slots are taken and given back by requests in flight.
func limEventually(t *testing.T, what string, want limAnswer, probe func() limAnswer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := probe()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %+v, want %+v", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLimitsWatchersPerClientAndInTotal(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, func(c *web.Config) { c.MaxWatchers, c.MaxWatchersPerClient = 3, 2 })
	a, b := limClient(t, "127.0.0.1"), limClient(t, "127.0.0.2")
	url := p.client.Base + "/watch"

	_, closeFirst := limWatch(t, a, url)
	if got, _ := limWatch(t, a, p.client.Base+"/customers/lim-1/watch"); got.status != http.StatusOK {
		t.Fatalf("second stream of client a: %+v", got)
	}
	if got, _ := limWatch(t, a, url); got != (limAnswer{http.StatusTooManyRequests, "too_many_requests", "1"}) {
		t.Errorf("third stream of client a: %+v, want 429 too_many_requests with Retry-After 1", got)
	}
	if got, _ := limWatch(t, b, url); got.status != http.StatusOK {
		t.Fatalf("client b is not held back by client a's share: %+v", got)
	}
	if got, _ := limWatch(t, b, url); got != (limAnswer{http.StatusServiceUnavailable, "too_many_watchers", "1"}) {
		t.Errorf("a stream beyond the total: %+v, want 503 too_many_watchers with Retry-After 1", got)
	}
	closeFirst()
	limEventually(t, "client a after closing a stream", limAnswer{status: http.StatusOK}, func() limAnswer {
		got, _ := limWatch(t, a, url)
		return got
	})
}

func TestLimitsWaitersPerClientAndInTotal(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, func(c *web.Config) { c.MaxWaiters, c.MaxWaitersPerClient, c.MaxWait = 3, 2, 3*time.Minute })
	a, b := limClient(t, "127.0.0.1"), limClient(t, "127.0.0.2")
	probe := func(c *http.Client) func() limAnswer {
		return func() limAnswer {
			return limDo(t, c, http.MethodGet, p.client.Base+"/customers/lim-probe?min_version=1&wait=0s", "")
		}
	}
	if got := probe(a)(); got.status != http.StatusGatewayTimeout {
		t.Fatalf("a wait with no one waiting: %+v, want 504", got)
	}

	stopA := limHoldWaits(t, a, p.client.Base, 2)
	tooMany := limAnswer{http.StatusTooManyRequests, "too_many_requests", "1"}
	limEventually(t, "a third wait of client a", tooMany, probe(a))
	register := `{"type":"customer.registered","data":{"name":"L","email":"l@example.com"}}`
	if got := limDo(t, a, http.MethodPost, p.client.Base+"/customers/lim-w/events", register); got != tooMany {
		t.Errorf("a write of client a over its share: %+v, want %+v", got, tooMany)
	}
	if got := limDo(t, a, http.MethodGet, p.client.Base+"/customers/lim-w", ""); got.status != http.StatusNotFound {
		t.Errorf("a refused write was produced: GET answers %+v", got)
	}
	if got := limDo(t, a, http.MethodGet, p.client.Base+"/customers/lim-w?min_version=0", ""); got.status != http.StatusNotFound {
		t.Errorf("a read that does not wait is limited: %+v", got)
	}

	limHoldWaits(t, b, p.client.Base, 1)
	full := limAnswer{http.StatusServiceUnavailable, "too_many_waiters", "1"}
	limEventually(t, "a wait beyond the total", full, probe(b))
	if got := limDo(t, b, http.MethodPost, p.client.Base+"/customers/lim-w/events", register); got != full {
		t.Errorf("a write beyond the total: %+v, want %+v", got, full)
	}

	stopA()
	limEventually(t, "client a after its waits ended", limAnswer{status: http.StatusGatewayTimeout, code: "wait_timeout"}, probe(a))
	if got := limDo(t, a, http.MethodPost, p.client.Base+"/customers/lim-w/events", register); got.status != http.StatusCreated {
		t.Errorf("a write after the waits ended: %+v, want 201", got)
	}
}

func TestLimitsBodySize(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	url := p.client.Base + "/customers/lim-body/events"
	// A body at the limit is read whole (and is no event); one byte more is refused.
	if got := limDo(t, p.client.HTTP, http.MethodPost, url, strings.Repeat(" ", processor.MaxEventBytes)); got.status != http.StatusBadRequest || got.code != "malformed" {
		t.Errorf("a body of %d bytes: %+v, want 400 malformed", processor.MaxEventBytes, got)
	}
	if got := limDo(t, p.client.HTTP, http.MethodPost, url, strings.Repeat(" ", processor.MaxEventBytes+1)); got.status != http.StatusRequestEntityTooLarge || got.code != "too_large" {
		t.Errorf("a body of %d bytes: %+v, want 413 too_large", processor.MaxEventBytes+1, got)
	}
}

// TestLimitsSlowBodyIsCutOff sends a request whose body never arrives in
// full: the server answers once the body read timeout passes instead of
// holding the request.
func TestLimitsSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	p := startPipeline(t, func(c *web.Config) { c.BodyReadTimeout = timeout })
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.client.Base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := fmt.Fprint(conn, "POST /customers/lim-slow/events HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":"); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	got, took := limRead(t, resp), time.Since(start)
	if got.status != http.StatusBadRequest || got.code != "unreadable_body" {
		t.Errorf("stalled body: %+v, want 400 unreadable_body", got)
	}
	if took < timeout || took > timeout+5*time.Second {
		t.Errorf("answered after %s, want soon after the %s body read timeout", took, timeout)
	}
}
