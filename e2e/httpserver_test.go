package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/web"
)

// The HTTP server's own settings bound what one connection can hold. The
// pipeline runs the server that serve runs (web.Server.Run), so these
// tests see its settings; an httptest wrapper of the handler has none.

func TestHTTPServerRefusesOversizedHeaders(t *testing.T) {
	p := startPipeline(t)
	req, err := http.NewRequest(http.MethodGet, p.client.Base+"/customers/cust-0001", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Pad", strings.Repeat("p", 100<<10)) // over the 64 KiB bound
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("oversized headers: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers answered %d, want 431", resp.StatusCode)
	}
}

// httpConnClosed dials addr, writes prefix, and reports whether the
// server closed the connection within wait, and how long it took.
func httpConnClosed(t *testing.T, addr, prefix string, wait time.Duration) (bool, time.Duration) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, prefix); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(start.Add(wait)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for {
		// A closed connection reads EOF (after any response the server
		// sent); a deadline means the server still holds it open.
		if _, err := r.ReadByte(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false, time.Since(start)
			}
			return true, time.Since(start)
		}
	}
}

func TestHTTPServerClosesSlowAndIdleConnections(t *testing.T) {
	p := startPipeline(t, func(c *web.Config) {
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	})
	addr := strings.TrimPrefix(p.client.Base, "http://")
	tests := []struct {
		name   string
		prefix string
	}{
		// A slowloris client: headers started, never finished.
		{name: "headers never finished", prefix: "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		// A keep-alive connection left idle after one request.
		{name: "idle after a request", prefix: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			closed, after := httpConnClosed(t, addr, test.prefix, 5*time.Second)
			if !closed {
				t.Fatalf("connection still open after %s; the server's 300 ms timeout did not apply", after.Round(time.Millisecond))
			}
			t.Logf("closed after %s", after.Round(time.Millisecond))
		})
	}
}

// openConns opens n keep-alive connections from source, each after one
// answered request, and closes them when the test ends. It returns how
// many the server kept: a refused connection is closed before it answers.
func openConns(t *testing.T, addr, source string, n int) (kept []net.Conn) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	for range n {
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial from %s: %v", source, err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			continue // refused and already closed
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue // refused: closed before an answer
		}
		resp.Body.Close()
		kept = append(kept, c)
	}
	return kept
}

// Idle connections cost the server memory that no request bound sees:
// each holds a goroutine and its buffers. 8,000 of them took the service
// from 28 MB to 189 MB of RSS before connections were bounded.
func TestHTTPServerBoundsConnections(t *testing.T) {
	p := startPipeline(t, func(c *web.Config) {
		c.MaxConnections, c.MaxConnectionsPerClient = 30, 20
	})
	addr := strings.TrimPrefix(p.client.Base, "http://")
	// The pipeline's own client may hold a connection or two: let the
	// server see them closed.
	p.client.HTTP.CloseIdleConnections()
	for deadline := time.Now().Add(5 * time.Second); gaugeValue(t, p, "eventfold_http_connections") != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the pipeline client's connections are still open")
		}
		time.Sleep(20 * time.Millisecond)
	}

	a := openConns(t, addr, "127.0.0.2", 25)
	if len(a) != 20 {
		t.Fatalf("client 127.0.0.2 kept %d of 25 connections, want its bound of 20", len(a))
	}
	b := openConns(t, addr, "127.0.0.3", 15)
	if len(b) != 10 {
		t.Fatalf("client 127.0.0.3 kept %d of 15 connections with 20 open elsewhere, want 10 (30 in all)", len(b))
	}
	if got := sumCounter(t, p.reg, "eventfold_http_connections_refused_total"); got != 10 {
		t.Errorf("eventfold_http_connections_refused_total = %v, want 10", got)
	}
	// Closing connections frees their slots.
	for _, c := range a[:5] {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c := openConns(t, addr, "127.0.0.3", 1); len(c) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection accepted after 5 were closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
