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
