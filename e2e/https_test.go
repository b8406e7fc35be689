package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestServeHTTPS runs the binary with --http-tls-cert and --http-tls-key:
// a client that trusts the CA reads over HTTPS, plain HTTP gets no answer
// it could take for the API, and write tokens still apply.
func TestServeHTTPS(t *testing.T) {
	t.Parallel()
	bin := binBuild(t)
	certs := testkit.NewTLSFiles(t)
	tokens := t.TempDir() + "/write-tokens"
	if err := os.WriteFile(tokens, []byte("# writers\nwrite-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, kport := binFreePort(t), binFreePort(t)
	dataDir := t.TempDir()
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--embedded-addr", fmt.Sprintf("127.0.0.1:%d", kport),
		"--http-tls-cert", certs.ServerCert, "--http-tls-key", certs.ServerKey, "--write-token-file", tokens)
	cmd.Env = binEnv()
	startProcess(t, processSpec{name: "eventfold serve", cmd: cmd, output: &outputBuffer{},
		about: fmt.Sprintf("https 127.0.0.1:%d, data dir %s", port, dataDir), logTail: 64 << 10})

	ca, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("bad CA file")
	}
	client := testkit.NewClient(fmt.Sprintf("https://127.0.0.1:%d", port))
	client.HTTP.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	client.WaitReady(t, 60*time.Second)

	if status, _ := client.Customer(t, "nobody", ""); status != http.StatusNotFound {
		t.Errorf("GET over HTTPS: %d, want 404", status)
	}
	for _, tt := range []struct {
		token  string
		status int
	}{{"", 401}, {"wrong-token-0123456789", 403}, {"write-token-0123456789", 201}} {
		req, _ := http.NewRequest(http.MethodPost, client.Base+"/customers/tls-1/events",
			strings.NewReader(`{"type":"customer.registered","data":{"name":"T","email":"t@example.com"}}`))
		req.Header.Set("Content-Type", "application/json")
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := client.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("POST with token %q: %d, want %d", tt.token, resp.StatusCode, tt.status)
		}
	}
	// Plain HTTP to the HTTPS port is refused by the TLS layer.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the HTTPS port: %d, want 400 from the TLS layer", resp.StatusCode)
		}
	}
}
