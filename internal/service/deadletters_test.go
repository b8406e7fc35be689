package service

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// countingProxy forwards TCP connections to a broker and counts them.
// Kafka clients reach it as their bootstrap broker: every new client
// connects through it once, while a client that is reused does not.
type countingProxy struct {
	ln       net.Listener
	accepted atomic.Int64
	open     atomic.Int64
	wg       sync.WaitGroup
	conns    sync.Map // net.Conn -> struct{}, closed at cleanup
}

func startCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		p.conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
		p.wg.Wait()
	})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			p.open.Add(1)
			p.conns.Store(in, struct{}{})
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer p.open.Add(-1)
				defer p.conns.Delete(in)
				p.forward(in, target)
			}()
		}
	}()
	return p
}

// forward copies both ways until either side closes.
func (p *countingProxy) forward(in net.Conn, target string) {
	defer in.Close()
	out, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done // one side closed: closing both ends the other copy
}

// TestDeadLetterReaderIsSharedAndClosed: the page's dead-letter requests
// use the one reader the service built, not a Kafka client each (the
// page opened a client per request: 20 requests, 20 new connections to
// the bootstrap broker), and Close closes it.
func TestDeadLetterReaderIsSharedAndClosed(t *testing.T) {
	broker := testkit.StartKfake(t, embedded.Config{Partitions: 3})
	proxy := startCountingProxy(t, broker)
	cfg := testConfig(t)
	cfg.Kafka.Brokers = []string{proxy.ln.Addr().String()}
	svc, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			svc.Close()
		}
	})
	get := func() {
		t.Helper()
		rec := httptest.NewRecorder()
		svc.Server.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/api/dead-letters?reason=malformed", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /ui/api/dead-letters: %d %s", rec.Code, rec.Body)
		}
	}
	get() // a first read may open the connection to the partitions' leader
	before := proxy.accepted.Load()
	const requests = 20
	for range requests {
		get()
	}
	if grew := proxy.accepted.Load() - before; grew != 0 {
		t.Errorf("%d dead-letter requests opened %d connections to the bootstrap broker, want 0: a client per request", requests, grew)
	}

	if err := svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	if _, err := svc.DeadLetters.Bounds(); err == nil {
		t.Error("the dead-letter reader still reads after the service closed")
	}
	// Every client of the service, the dead-letter reader's included,
	// let go of its connection.
	deadline := time.Now().Add(10 * time.Second)
	for proxy.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := proxy.open.Load(); n != 0 {
		t.Errorf("%d connections to the bootstrap broker still open after Close, want 0", n)
	}
}
