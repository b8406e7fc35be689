package e2e

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
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
			addr := testkit.StartKfake(t, test.broker)
			start := time.Now()
			srv := secServe(t, bin, addr, test.env, test.flags...)
			srv.waitReady(60 * time.Second)
			ready := time.Since(start)
			if want := `msg="connecting to kafka" brokers=` + addr; !strings.Contains(srv.output.String(), want) {
				t.Errorf("serve log has no %q", want)
			}

			id := "cust-sec-" + strings.NewReplacer(" ", "-", ",", "").Replace(strings.ToLower(test.name))
			lines := []testkit.Line{
				binEvent(id+"-1", id, processor.TypeRegistered, "2026-06-01T00:00:00Z", `{"name":"Ada","email":"ada@example.com"}`),
				binEvent(id+"-2", id, processor.TypeRenamed, "2026-06-01T00:01:00Z", `{"name":"Ada Secure"}`),
				binEvent(id+"-3", id, processor.TypeEmailChanged, "2026-06-01T00:02:00Z", `{"email":"ada@secure.example"}`),
			}
			produce := command{path: bin, args: append([]string{"produce", "--erasure=off", "--brokers", addr}, test.flags...), env: test.env, stdin: valueLines(lines)}
			out := produce.succeed(t).output
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
	mtls := testkit.StartKfake(t, embedded.Config{TLS: files.ServerConfig(t, tls.RequireAndVerifyClientCert)})
	sasl := testkit.StartKfake(t, embedded.Config{SASLUsers: secUsers})
	for _, test := range []struct {
		name     string
		args     []string
		wantCode int
		want     []string // parts of the output
	}{
		{name: "serve with a wrong PLAIN password",
			args:     []string{"serve", "--erasure=off", "--brokers", sasl, "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "plain-user", "--kafka-sasl-password", "wrong"},
			wantCode: 1, want: []string{"failed to connect to kafka at " + sasl, `SASL authentication failed: PLAIN as "plain-user"`}},
		{name: "serve with a wrong SCRAM-SHA-512 password",
			args:     []string{"serve", "--erasure=off", "--brokers", sasl, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", "scram512-user", "--kafka-sasl-password", "wrong"},
			wantCode: 1, want: []string{"failed to connect to kafka", `SASL authentication failed: SCRAM-SHA-512 as "scram512-user"`}},
		// Without TLS and SASL there is no check at start: sarama's error
		// stops the start, a moment later.
		{name: "serve with no SASL to a SASL broker",
			args:     []string{"serve", "--erasure=off", "--brokers", sasl},
			wantCode: 1, want: []string{"failed to connect to kafka at " + sasl}},
		{name: "serve without the required client certificate",
			args:     []string{"serve", "--erasure=off", "--brokers", mtls, "--kafka-tls-ca", files.CA},
			wantCode: 1, want: []string{"failed to connect to kafka", "TLS handshake failed", "certificate required"}},
		{name: "serve with the wrong CA",
			args:     []string{"serve", "--erasure=off", "--brokers", mtls, "--kafka-tls-ca", otherCA.CA, "--kafka-tls-cert", files.ClientCert, "--kafka-tls-key", files.ClientKey},
			wantCode: 1, want: []string{"failed to connect to kafka", "TLS handshake failed", "certificate signed by unknown authority"}},
		{name: "serve in plaintext to a TLS broker",
			args:     []string{"serve", "--erasure=off", "--brokers", mtls},
			wantCode: 1, want: []string{"failed to connect to kafka at " + mtls}},
		{name: "serve with SASL but no TLS to a TLS broker",
			args:     []string{"serve", "--erasure=off", "--brokers", mtls, "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "plain-user", "--kafka-sasl-password", "plain-secret"},
			wantCode: 1, want: []string{"failed to connect to kafka", "does it expect TLS?", "SASL PLAIN without TLS sends the Kafka password in clear text"}},
		{name: "produce with a wrong SCRAM-SHA-256 password",
			args:     []string{"produce", "--erasure=off", "--brokers", sasl, "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "scram256-user", "--kafka-sasl-password", "wrong"},
			wantCode: 1, want: []string{"failed to connect to kafka", "SASL authentication failed"}},
		{name: "produce trusting the system roots only",
			args:     []string{"produce", "--erasure=off", "--brokers", mtls, "--kafka-tls"},
			wantCode: 1, want: []string{"TLS handshake failed", "certificate signed by unknown authority"}},
		{name: "unknown SASL mechanism",
			args:     []string{"serve", "--erasure=off", "--brokers", sasl, "--kafka-sasl-mechanism", "GSSAPI", "--kafka-sasl-username", "u", "--kafka-sasl-password", "p"},
			wantCode: 2, want: []string{`unknown SASL mechanism "GSSAPI"`}},
		{name: "client certificate without key",
			args:     []string{"serve", "--erasure=off", "--brokers", mtls, "--kafka-tls-cert", files.ClientCert},
			wantCode: 2, want: []string{"needs both a certificate file and a key file"}},
		{name: "security flags with the embedded broker",
			args:     []string{"serve", "--embedded-addr", "127.0.0.1:0", "--kafka-tls-ca", files.CA},
			wantCode: 2, want: []string{"need --brokers"}},
	} {
		t.Run(test.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{}, test.args...)
			if args[0] == "serve" {
				args = append(args, "--data-dir", t.TempDir(), "--http-addr", binFreeAddr(t))
			}
			r := command{path: bin, args: args, timeout: secFailWithin}.run(t)
			code, out := r.code, r.output
			if code != test.wantCode {
				t.Fatalf("exit code %d, want %d; output:\n%s", code, test.wantCode, out)
			}
			for _, want := range test.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			t.Logf("exited %d after %s: %s", code, r.took.Round(time.Millisecond), secLastLine(out))
		})
	}
}

// TestSecurityHelpHidesPassword checks that --help, which prints the
// defaults the environment gives, does not print the SASL password.
func TestSecurityHelpHidesPassword(t *testing.T) {
	t.Parallel()
	bin := binBuild(t)
	const secret = "do-not-print-me"
	for _, subcommand := range []string{"serve", "produce"} {
		out := command{path: bin, args: []string{subcommand, "--help"}, env: []string{"EVENTFOLD_KAFKA_SASL_PASSWORD=" + secret, "EVENTFOLD_KAFKA_TLS=true"}}.succeed(t).output
		if strings.Contains(out, secret) {
			t.Errorf("eventfold %s --help prints the password:\n%s", subcommand, out)
		}
		for _, flag := range []string{"--kafka-tls (EVENTFOLD_KAFKA_TLS)", "--kafka-sasl-password-file", "--kafka-tls-ca"} {
			if !strings.Contains(out, flag) {
				t.Errorf("eventfold %s --help lacks %q", subcommand, flag)
			}
		}
	}
}

// secServe starts `eventfold serve --brokers addr` with flags and extra
// environment. The cleanup stops it and prints its log if the test failed.
func secServe(t *testing.T, bin, addr string, env []string, flags ...string) *server {
	t.Helper()
	return startServe(t, bin, serveSpec{
		args:      append([]string{"--erasure=off", "--brokers", addr, "--data-dir", t.TempDir()}, flags...),
		env:       env,
		kafkaAddr: addr,
		logTail:   32 << 10,
	})
}

func secLastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
