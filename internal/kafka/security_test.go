package kafka_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
)

func secConfig(tlsCfg kafka.TLSConfig, saslCfg kafka.SASLConfig) kafka.Config {
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{"127.0.0.1:9092"}
	kc.TLS, kc.SASL = tlsCfg, saslCfg
	return kc
}

func TestSecurityValidate(t *testing.T) {
	t.Parallel()
	files := testkit.NewTLSFiles(t)
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, test := range []struct {
		name    string
		tls     kafka.TLSConfig
		sasl    kafka.SASLConfig
		wantErr string // empty: valid
	}{
		{name: "plaintext"},
		{name: "TLS with the system roots", tls: kafka.TLSConfig{Enabled: true}},
		{name: "TLS with a CA", tls: kafka.TLSConfig{Enabled: true, CAFile: files.CA}},
		{name: "mutual TLS", tls: kafka.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}},
		{name: "TLS settings without TLS", tls: kafka.TLSConfig{CAFile: files.CA}, wantErr: "TLS settings given but TLS is not enabled"},
		{name: "server name without TLS", tls: kafka.TLSConfig{ServerName: "kafka"}, wantErr: "TLS is not enabled"},
		{name: "certificate without key", tls: kafka.TLSConfig{Enabled: true, CertFile: files.ClientCert}, wantErr: "needs both a certificate file and a key file"},
		{name: "key without certificate", tls: kafka.TLSConfig{Enabled: true, KeyFile: files.ClientKey}, wantErr: "needs both a certificate file and a key file"},
		{name: "missing CA file", tls: kafka.TLSConfig{Enabled: true, CAFile: missing}, wantErr: "failed to read TLS CA file"},
		{name: "CA file without PEM", tls: kafka.TLSConfig{Enabled: true, CAFile: notPEM}, wantErr: "holds no PEM certificate"},
		{name: "key of another certificate", tls: kafka.TLSConfig{Enabled: true, CertFile: files.ClientCert, KeyFile: files.ServerKey}, wantErr: "failed to load TLS client certificate"},
		{name: "missing certificate file", tls: kafka.TLSConfig{Enabled: true, CertFile: missing, KeyFile: files.ClientKey}, wantErr: "failed to load TLS client certificate"},
		{name: "PLAIN", sasl: kafka.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}},
		{name: "SCRAM-SHA-256 in lower case", sasl: kafka.SASLConfig{Mechanism: "scram-sha-256", Username: "u", Password: "p"}},
		{name: "SCRAM-SHA-512 over TLS", tls: kafka.TLSConfig{Enabled: true, CAFile: files.CA}, sasl: kafka.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"}},
		{name: "unknown mechanism", sasl: kafka.SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}, wantErr: `unknown SASL mechanism "GSSAPI"`},
		{name: "no password", sasl: kafka.SASLConfig{Mechanism: "PLAIN", Username: "u"}, wantErr: "SASL PLAIN needs a username and a password"},
		{name: "no username", sasl: kafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Password: "p"}, wantErr: "needs a username and a password"},
		{name: "credentials without mechanism", sasl: kafka.SASLConfig{Username: "u", Password: "p"}, wantErr: "without a SASL mechanism"},
	} {
		t.Run(test.name, func(t *testing.T) {
			err := secConfig(test.tls, test.sasl).Validate()
			switch {
			case test.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case test.wantErr != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error with %q", test.wantErr)
			case test.wantErr != "" && !strings.Contains(err.Error(), test.wantErr):
				t.Fatalf("Validate() = %q, want it to contain %q", err, test.wantErr)
			}
		})
	}
}

func TestSecuritySaramaConfig(t *testing.T) {
	t.Parallel()
	files := testkit.NewTLSFiles(t)
	for _, test := range []struct {
		name          string
		tls           kafka.TLSConfig
		sasl          kafka.SASLConfig
		wantTLS       bool
		wantRootCAs   bool
		wantClientCrt bool
		wantMechanism sarama.SASLMechanism // empty: SASL off
		wantSCRAM     bool
	}{
		{name: "plaintext"},
		{name: "TLS with the system roots", tls: kafka.TLSConfig{Enabled: true}, wantTLS: true},
		{name: "TLS with a CA", tls: kafka.TLSConfig{Enabled: true, CAFile: files.CA, ServerName: "kafka.internal"}, wantTLS: true, wantRootCAs: true},
		{name: "mutual TLS", tls: kafka.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}, wantTLS: true, wantRootCAs: true, wantClientCrt: true},
		{name: "insecure TLS", tls: kafka.TLSConfig{Enabled: true, InsecureSkipVerify: true}, wantTLS: true},
		{name: "PLAIN", sasl: kafka.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}, wantMechanism: sarama.SASLTypePlaintext},
		{name: "SCRAM-SHA-256", sasl: kafka.SASLConfig{Mechanism: "scram-sha-256", Username: "u", Password: "p"}, wantMechanism: sarama.SASLTypeSCRAMSHA256, wantSCRAM: true},
		{name: "SCRAM-SHA-512 over mutual TLS",
			tls:     kafka.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey},
			sasl:    kafka.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"},
			wantTLS: true, wantRootCAs: true, wantClientCrt: true, wantMechanism: sarama.SASLTypeSCRAMSHA512, wantSCRAM: true},
	} {
		t.Run(test.name, func(t *testing.T) {
			kc := secConfig(test.tls, test.sasl)
			if err := kc.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			sc := kc.Sarama()
			if err := sc.Validate(); err != nil {
				t.Fatalf("sarama rejects the config: %v", err)
			}
			if sc.Net.TLS.Enable != test.wantTLS {
				t.Fatalf("Net.TLS.Enable = %v, want %v", sc.Net.TLS.Enable, test.wantTLS)
			}
			if test.wantTLS {
				tc := sc.Net.TLS.Config
				if tc == nil {
					t.Fatal("Net.TLS.Config is nil")
				}
				if got := tc.RootCAs != nil; got != test.wantRootCAs {
					t.Errorf("RootCAs set = %v, want %v", got, test.wantRootCAs)
				}
				if got := len(tc.Certificates) == 1; got != test.wantClientCrt {
					t.Errorf("client certificate set = %v, want %v", got, test.wantClientCrt)
				}
				if tc.ServerName != test.tls.ServerName || tc.InsecureSkipVerify != test.tls.InsecureSkipVerify {
					t.Errorf("ServerName %q, InsecureSkipVerify %v; want %q, %v", tc.ServerName, tc.InsecureSkipVerify, test.tls.ServerName, test.tls.InsecureSkipVerify)
				}
				if tc.MinVersion < tls.VersionTLS12 {
					t.Errorf("MinVersion = %x, want at least TLS 1.2", tc.MinVersion)
				}
			}
			s := sc.Net.SASL
			if s.Enable != (test.wantMechanism != "") {
				t.Fatalf("Net.SASL.Enable = %v, want %v", s.Enable, test.wantMechanism != "")
			}
			if !s.Enable {
				return
			}
			if s.Mechanism != test.wantMechanism || s.User != "u" || s.Password != "p" {
				t.Errorf("SASL %s as %q/%q, want %s as u/p", s.Mechanism, s.User, s.Password, test.wantMechanism)
			}
			if !s.Handshake || s.Version != sarama.SASLHandshakeV1 {
				t.Errorf("SASL handshake %v version %d, want true and v1", s.Handshake, s.Version)
			}
			if got := s.SCRAMClientGeneratorFunc != nil; got != test.wantSCRAM {
				t.Errorf("SCRAM client set = %v, want %v", got, test.wantSCRAM)
			}
		})
	}
}

// TestSecurityTLSFilesGoneRefusesEveryHandshake removes the CA file after
// Validate: the clients made later must not fall back to the system roots.
func TestSecurityTLSFilesGoneRefusesEveryHandshake(t *testing.T) {
	t.Parallel()
	files := testkit.NewTLSFiles(t)
	kc := secConfig(kafka.TLSConfig{Enabled: true, CAFile: files.CA}, kafka.SASLConfig{})
	if err := kc.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(files.CA); err != nil {
		t.Fatal(err)
	}
	tc := kc.Sarama().Net.TLS.Config
	if tc == nil || tc.VerifyConnection == nil {
		t.Fatalf("TLS config %+v does not refuse connections", tc)
	}
	if err := tc.VerifyConnection(tls.ConnectionState{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("VerifyConnection = %v, want the missing CA file", err)
	}
}

// TestSecurityCheckConnection runs CheckConnection against kfake brokers
// with TLS and SASL users, in process.
func TestSecurityCheckConnection(t *testing.T) {
	t.Parallel()
	files, otherCA := testkit.NewTLSFiles(t), testkit.NewTLSFiles(t)
	users := []embedded.SASLUser{
		{Mechanism: kafka.SASLPlain, User: "plain-user", Password: "plain-secret"},
		{Mechanism: kafka.SASLScramSHA256, User: "scram256-user", Password: "scram256-secret"},
		{Mechanism: kafka.SASLScramSHA512, User: "scram512-user", Password: "scram512-secret"},
	}
	mtls := testkit.StartKfake(t, embedded.Config{TLS: files.ServerConfig(t, tls.RequireAndVerifyClientCert)})
	sasl := testkit.StartKfake(t, embedded.Config{SASLUsers: users})
	both := testkit.StartKfake(t, embedded.Config{TLS: files.ServerConfig(t, tls.NoClientCert), SASLUsers: users})
	plain := testkit.StartKfake(t, embedded.Config{})

	clientTLS := kafka.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}
	serverTLS := kafka.TLSConfig{Enabled: true, CAFile: files.CA}
	for _, test := range []struct {
		name    string
		broker  string
		tls     kafka.TLSConfig
		sasl    kafka.SASLConfig
		wantIs  error  // nil: the check passes
		wantMsg string // part of the message
	}{
		{name: "plaintext", broker: plain},
		{name: "mutual TLS", broker: mtls, tls: clientTLS},
		{name: "mutual TLS without client certificate", broker: mtls, tls: serverTLS, wantIs: kafka.ErrTLSHandshake, wantMsg: "certificate required"},
		{name: "TLS with the wrong CA", broker: mtls, tls: kafka.TLSConfig{Enabled: true, CAFile: otherCA.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey},
			wantIs: kafka.ErrTLSHandshake, wantMsg: "certificate signed by unknown authority"},
		{name: "TLS with the wrong server name", broker: mtls, tls: kafka.TLSConfig{Enabled: true, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey, ServerName: "kafka.example"},
			wantIs: kafka.ErrTLSHandshake, wantMsg: "kafka.example"},
		{name: "plaintext to a TLS broker", broker: mtls, wantMsg: "does it expect TLS?"},
		// kfake reads the TLS hello as the length of a huge request and
		// waits for it: the step timeout ends the wait.
		{name: "TLS to a plaintext broker", broker: plain, tls: serverTLS, wantIs: kafka.ErrTLSHandshake, wantMsg: "does the broker speak TLS on this port?"},
		{name: "PLAIN", broker: sasl, sasl: kafka.SASLConfig{Mechanism: "PLAIN", Username: "plain-user", Password: "plain-secret"}},
		{name: "SCRAM-SHA-256", broker: sasl, sasl: kafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "scram256-user", Password: "scram256-secret"}},
		{name: "SCRAM-SHA-512", broker: sasl, sasl: kafka.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "scram512-user", Password: "scram512-secret"}},
		{name: "PLAIN with a wrong password", broker: sasl, sasl: kafka.SASLConfig{Mechanism: "PLAIN", Username: "plain-user", Password: "wrong"},
			wantIs: kafka.ErrSASLAuthentication, wantMsg: `PLAIN as "plain-user"`},
		{name: "SCRAM-SHA-256 with a wrong password", broker: sasl, sasl: kafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "scram256-user", Password: "wrong"},
			wantIs: kafka.ErrSASLAuthentication, wantMsg: "wrong username, password or mechanism?"},
		{name: "SCRAM-SHA-512 user with SCRAM-SHA-256", broker: sasl, sasl: kafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "scram512-user", Password: "scram512-secret"},
			wantIs: kafka.ErrSASLAuthentication},
		{name: "no SASL to a SASL broker", broker: sasl, wantMsg: "does it require SASL authentication?"},
		{name: "TLS and SCRAM-SHA-512", broker: both, tls: serverTLS, sasl: kafka.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "scram512-user", Password: "scram512-secret"}},
		{name: "TLS and PLAIN with a wrong password", broker: both, tls: serverTLS, sasl: kafka.SASLConfig{Mechanism: "PLAIN", Username: "plain-user", Password: "wrong"},
			wantIs: kafka.ErrSASLAuthentication},
		{name: "SASL without TLS to a TLS and SASL broker", broker: both, sasl: kafka.SASLConfig{Mechanism: "PLAIN", Username: "plain-user", Password: "plain-secret"},
			wantMsg: "does it expect TLS?"},
		{name: "unreachable", broker: secClosedAddr(t), wantIs: kafka.ErrBrokerUnreachable, wantMsg: "connection refused"},
	} {
		t.Run(test.name, func(t *testing.T) {
			t.Parallel()
			kc := secConfig(test.tls, test.sasl)
			kc.Brokers = []string{test.broker}
			if err := kc.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			start := time.Now()
			err := kafka.CheckConnection(context.Background(), kc)
			elapsed := time.Since(start)
			if elapsed > 15*time.Second {
				t.Errorf("CheckConnection took %s", elapsed)
			}
			wantErr := test.wantIs != nil || test.wantMsg != ""
			switch {
			case !wantErr && err != nil:
				t.Fatalf("CheckConnection = %v, want nil", err)
			case wantErr && err == nil:
				t.Fatalf("CheckConnection = nil, want an error")
			case test.wantIs != nil && !errors.Is(err, test.wantIs):
				t.Fatalf("CheckConnection = %v, want errors.Is %v", err, test.wantIs)
			case !strings.Contains(errString(err), test.wantMsg):
				t.Fatalf("CheckConnection = %v, want it to contain %q", err, test.wantMsg)
			}
			if err != nil {
				t.Logf("%s: %v", elapsed.Round(time.Millisecond), err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// secClosedAddr returns the address of a kfake broker that was closed:
// nothing listens there.
func secClosedAddr(t *testing.T) string {
	t.Helper()
	b, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("failed to start kfake: %v", err)
	}
	addr := b.Addr()
	b.Close()
	return addr
}
