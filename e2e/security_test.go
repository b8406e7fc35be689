package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testkit"
	"github.com/eventfold/eventfold/processor"
)

// secFailWithin bounds a start that must fail: a rejected certificate or
// password must stop the binary with its reason, not leave it retrying.
const secFailWithin = 30 * time.Second

// secUsers are the SASL users of the test brokers, one per mechanism.
var secUsers = []embedded.SASLUser{
	{Mechanism: kafka.SASLPlain, User: "plain-user", Password: "plain-secret"},
	{Mechanism: kafka.SASLScramSHA256, User: "scram256-user", Password: "scram256-secret"},
	{Mechanism: kafka.SASLScramSHA512, User: "scram512-user", Password: "scram512-secret"},
}

// TestSecurityBinaryTLSAndSASL runs the built binary, serve and produce,
// against kfake brokers that require mutual TLS, SASL (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512) or both, and reads the folded state over HTTP.
func TestSecurityBinaryTLSAndSASL(t *testing.T) {
	t.Parallel()
	bin := binBuild(t)
	files := testkit.NewTLSFiles(t)
	mtlsFlags := []string{"--kafka-tls-ca", files.CA, "--kafka-tls-cert", files.ClientCert, "--kafka-tls-key", files.ClientKey}
	passwordFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passwordFile, []byte("scram512-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, test := range []struct {
		name   string
		broker embedded.Config
		flags  []string
		env    []string
	}{
		{name: "mutual TLS", broker: embedded.Config{TLS: files.ServerConfig(t, tls.RequireAndVerifyClientCert)}, flags: mtlsFlags},
		{name: "SASL PLAIN", broker: embedded.Config{SASLUsers: secUsers},
			flags: []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "plain-user", "--kafka-sasl-password", "plain-secret"}},
		{name: "SASL SCRAM-SHA-256, password from the environment", broker: embedded.Config{SASLUsers: secUsers},
			flags: []string{"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "scram256-user"},
			env:   []string{"EVENTFOLD_KAFKA_SASL_PASSWORD=scram256-secret"}},
		{name: "SASL SCRAM-SHA-512, password from a file", broker: embedded.Config{SASLUsers: secUsers},
			flags: []string{"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "scram512-user", "--kafka-sasl-password-file", passwordFile}},
		{name: "mutual TLS and SCRAM-SHA-512", broker: embedded.Config{TLS: files.ServerConfig(t, tls.RequireAndVerifyClientCert), SASLUsers: secUsers},
			flags: append([]string{"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "scram512-user", "--kafka-sasl-password-file", passwordFile}, mtlsFlags...)},
	} {
		t.Run(test.name, func(t *testing.T) {
			t.Parallel()
			addr := secBroker(t, test.broker)
			start := time.Now()
			srv := secServe(t, bin, addr, test.env, test.flags...)
			secWaitReady(t, srv, 60*time.Second)
			ready := time.Since(start)
			if want := `msg="connecting to kafka" brokers=` + addr; !strings.Contains(srv.log.String(), want) {
				t.Errorf("serve log has no %q", want)
			}

			id := "cust-sec-" + strings.NewReplacer(" ", "-", ",", "").Replace(strings.ToLower(test.name))
			lines := []testkit.Line{
				binEvent(id+"-1", id, processor.TypeRegistered, "2026-06-01T00:00:00Z", `{"name":"Ada","email":"ada@example.com"}`),
				binEvent(id+"-2", id, processor.TypeRenamed, "2026-06-01T00:01:00Z", `{"name":"Ada Secure"}`),
				binEvent(id+"-3", id, processor.TypeEmailChanged, "2026-06-01T00:02:00Z", `{"email":"ada@secure.example"}`),
			}
			var in bytes.Buffer
			for _, l := range lines {
				in.Write(l.Value)
				in.WriteByte('\n')
			}
			out := secRun(t, bin, test.env, in.Bytes(), append([]string{"produce", "--brokers", addr}, test.flags...)...)
			if !strings.Contains(out, "produced 3 events") {
				t.Fatalf("produce printed %q, want 3 events produced", out)
			}
			srv.client.AwaitFold(t, binFoldOnto(t, nil, lines), 30*time.Second)
			if _, c := srv.client.Customer(t, id, ""); c == nil || c.Name != "Ada Secure" || c.Version != 3 {
				t.Fatalf("customer %s = %+v, want version 3 named Ada Secure", id, c)
			}
			t.Logf("ready in %s, folded 3 events in %s", ready.Round(time.Millisecond), (time.Since(start) - ready).Round(time.Millisecond))
		})
	}
}

// TestSecurityBinaryRejected starts serve (and produce) with a credential
// or certificate the broker rejects: each must exit non-zero within
// secFailWithin and say which step failed.
func TestSecurityBinaryRejected(t *testing.T) {
	t.Parallel()
	bin := binBuild(t)
	files, otherCA := testkit.NewTLSFiles(t), testkit.NewTLSFiles(t)
	mtls := secBroker(t, embedded.Config{TLS: files.ServerConfig(t, tls.RequireAndVerifyClientCert)})
	sasl := secBroker(t, embedded.Config{SASLUsers: secUsers})
	for _, test := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string // parts of the output
	}{
		{name: "serve with a wrong PLAIN password",
			args:     []string{"serve", "--brokers", sasl, "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "plain-user", "--kafka-sasl-password", "wrong"},
			wantCode: 1, want: []string{"failed to connect to kafka at " + sasl, `SASL authentication failed: PLAIN as "plain-user"`}},
		{name: "serve with a wrong SCRAM-SHA-512 password",
			args:     []string{"serve", "--brokers", sasl, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "scram512-user", "--kafka-sasl-password", "wrong"},
			wantCode: 1, want: []string{"failed to connect to kafka", `SASL authentication failed: SCRAM-SHA-512 as "scram512-user"`}},
		// Without TLS and SASL there is no check at start: sarama's error
		// stops the start, a moment later.
		{name: "serve with no SASL to a SASL broker",
			args:     []string{"serve", "--brokers", sasl},
			wantCode: 1, want: []string{"failed to connect to kafka at " + sasl}},
		{name: "serve without the required client certificate",
			args:     []string{"serve", "--brokers", mtls, "--kafka-tls-ca", files.CA},
			wantCode: 1, want: []string{"failed to connect to kafka", "TLS handshake failed", "certificate required"}},
		{name: "serve with the wrong CA",
			args:     []string{"serve", "--brokers", mtls, "--kafka-tls-ca", otherCA.CA, "--kafka-tls-cert", files.ClientCert, "--kafka-tls-key", files.ClientKey},
			wantCode: 1, want: []string{"failed to connect to kafka", "TLS handshake failed", "certificate signed by unknown authority"}},
		{name: "serve in plaintext to a TLS broker",
			args:     []string{"serve", "--brokers", mtls},
			wantCode: 1, want: []string{"failed to connect to kafka at " + mtls}},
		{name: "serve with SASL but no TLS to a TLS broker",
			args:     []string{"serve", "--brokers", mtls, "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "plain-user", "--kafka-sasl-password", "plain-secret"},
			wantCode: 1, want: []string{"failed to connect to kafka", "does it expect TLS?", "SASL PLAIN without TLS sends the Kafka password in clear text"}},
		{name: "produce with a wrong SCRAM-SHA-256 password",
			args:     []string{"produce", "--brokers", sasl, "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "scram256-user", "--kafka-sasl-password", "wrong"},
			wantCode: 1, want: []string{"failed to connect to kafka", "SASL authentication failed"}},
		{name: "produce trusting the system roots only",
			args:     []string{"produce", "--brokers", mtls, "--kafka-tls"},
			wantCode: 1, want: []string{"TLS handshake failed", "certificate signed by unknown authority"}},
		{name: "unknown SASL mechanism",
			args:     []string{"serve", "--brokers", sasl, "--kafka-sasl-mechanism", "GSSAPI", "--kafka-sasl-username", "u", "--kafka-sasl-password", "p"},
			wantCode: 2, want: []string{`unknown SASL mechanism "GSSAPI"`}},
		{name: "client certificate without key",
			args:     []string{"serve", "--brokers", mtls, "--kafka-tls-cert", files.ClientCert},
			wantCode: 2, want: []string{"needs both a certificate file and a key file"}},
		{name: "security flags with the embedded broker",
			args:     []string{"serve", "--embedded-addr", "127.0.0.1:0", "--kafka-tls-ca", files.CA},
			wantCode: 2, want: []string{"need --brokers"}},
	} {
		t.Run(test.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{}, test.args...)
			if args[0] == "serve" {
				args = append(args, "--data-dir", t.TempDir(), "--http-addr", fmt.Sprintf("127.0.0.1:%d", binFreePort(t)))
			}
			start := time.Now()
			code, out := secRunFailing(t, bin, args...)
			elapsed := time.Since(start)
			if code != test.wantCode {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, test.wantCode, out)
			}
			for _, want := range test.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			t.Logf("exited %d after %s: %s", code, elapsed.Round(time.Millisecond), secLastLine(out))
		})
	}
}

// TestSecurityHelpHidesPassword checks that --help, which prints the
// defaults the environment gives, does not print the SASL password.
func TestSecurityHelpHidesPassword(t *testing.T) {
	t.Parallel()
	bin := binBuild(t)
	const secret = "do-not-print-me"
	for _, command := range []string{"serve", "produce"} {
		out := secRun(t, bin, []string{"EVENTFOLD_KAFKA_SASL_PASSWORD=" + secret, "EVENTFOLD_KAFKA_TLS=true"}, nil, command, "--help")
		if strings.Contains(out, secret) {
			t.Errorf("eventfold %s --help prints the password:\n%s", command, out)
		}
		for _, flag := range []string{"--kafka-tls (EVENTFOLD_KAFKA_TLS)", "--kafka-sasl-password-file", "--kafka-tls-ca"} {
			if !strings.Contains(out, flag) {
				t.Errorf("eventfold %s --help lacks %q", command, flag)
			}
		}
	}
}

// secBroker starts an in-memory kfake broker in the test process and
// returns its address.
func secBroker(t *testing.T, cfg embedded.Config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	b, err := embedded.Start(cfg)
	if err != nil {
		t.Fatalf("failed to start kfake: %v", err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

// secServe starts `eventfold serve --brokers addr` with flags and extra
// environment. The cleanup stops it and prints its log if the test failed.
func secServe(t *testing.T, bin, addr string, env []string, flags ...string) *binServer {
	t.Helper()
	dataDir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", binFreePort(t))
	s := &binServer{
		t:         t,
		kafkaAddr: addr,
		client:    testkit.NewClient("http://" + httpAddr),
		log:       &binLog{},
		done:      make(chan struct{}),
	}
	args := append([]string{"serve", "--brokers", addr, "--data-dir", dataDir, "--http-addr", httpAddr}, flags...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(binEnv(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("failed to start eventfold serve: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop(15 * time.Second)
		if t.Failed() {
			t.Logf("eventfold serve (pid %d) log:\n%s", s.cmd.Process.Pid, s.log.tail(32<<10))
		}
	})
	return s
}

// secWaitReady polls /readyz until 200, failing at once if serve exited.
func secWaitReady(t *testing.T, s *binServer, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for !s.exited() {
		resp, err := hc.Get(s.client.Base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 within %s; last answer: %s", s.client.Base, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("eventfold serve exited before it was ready: %v\n%s", s.waitErr, s.log.tail(8<<10))
}

// secRun runs the binary to completion within a minute, with extra
// environment, and returns its output; a failure fails the test.
func secRun(t *testing.T, bin string, env []string, stdin []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(binEnv(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("eventfold %s failed: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// secRunFailing runs the binary, which must exit within secFailWithin,
// and returns its exit code and output.
func secRunFailing(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), secFailWithin)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = binEnv()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("eventfold %s did not exit within %s; output:\n%s", strings.Join(args, " "), secFailWithin, out)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("failed to run eventfold: %v", err)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func secLastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
