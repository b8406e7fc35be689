package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eventfold/eventfold/internal/restart"
)

// TLSConfig says how to reach the brokers over TLS.
type TLSConfig struct {
	// Enabled turns TLS on. The other fields need it.
	Enabled bool
	// CAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates. Empty trusts the system's roots.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and its key,
	// for brokers that authenticate clients by certificate (mutual TLS).
	CertFile, KeyFile string
	// ServerName is the name checked in every broker's certificate.
	// Empty checks each broker's own host, as Kafka advertises it.
	ServerName string
	// InsecureSkipVerify trusts any broker certificate. For tests only.
	InsecureSkipVerify bool
}

// SASL mechanisms eventfold speaks.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLConfig says how to authenticate to the brokers with SASL.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, in any case.
	// Empty turns SASL off.
	Mechanism string
	Username  string
	Password  string
}

func (s SASLConfig) mechanism() string { return strings.ToUpper(s.Mechanism) }

// Errors of CheckConnection, by the step that failed.
var (
	ErrBrokerUnreachable  = errors.New("kafka broker unreachable")
	ErrTLSHandshake       = errors.New("TLS handshake failed")
	ErrSASLAuthentication = errors.New("SASL authentication failed")
)

func (t TLSConfig) validate() error {
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify {
			return errors.New("TLS settings given but TLS is not enabled")
		}
		return nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("a TLS client certificate needs both a certificate file and a key file")
	}
	_, err := t.load()
	return err
}

// load reads the files into a client configuration. The files are read
// again for every sarama configuration, so that a client created after a
// certificate rotation uses the new certificate.
func (t TLSConfig) load() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read TLS CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("failed to load TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// refuseAll is the TLS configuration when the files that Validate read
// can no longer be read: every handshake fails, with the reason, rather
// than falling back to the system's roots or no client certificate.
func refuseAll(err error) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Skipping the usual verification is safe: VerifyConnection runs
		// anyway and rejects every connection.
		InsecureSkipVerify: true,
		VerifyConnection:   func(tls.ConnectionState) error { return err },
	}
}

func (s SASLConfig) validate() error {
	switch s.mechanism() {
	case "":
		if s.Username != "" || s.Password != "" {
			return errors.New("SASL username or password given without a SASL mechanism")
		}
		return nil
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return fmt.Errorf("unknown SASL mechanism %q: use %s, %s or %s", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if s.Username == "" || s.Password == "" {
		return fmt.Errorf("SASL %s needs a username and a password", s.mechanism())
	}
	return nil
}

// applySecurity sets TLS and SASL on a fresh sarama configuration.
func (c Config) applySecurity(sc *sarama.Config) {
	if c.TLS.Enabled {
		tc, err := c.TLS.load()
		if err != nil {
			tc = refuseAll(err)
		}
		sc.Net.TLS.Enable, sc.Net.TLS.Config = true, tc
	}
	mechanism := c.SASL.mechanism()
	if mechanism == "" {
		return
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Mechanism = sarama.SASLMechanism(mechanism)
	sc.Net.SASL.User, sc.Net.SASL.Password = c.SASL.Username, c.SASL.Password
	// Kafka 4 and kfake speak only the v1 handshake, which is sent first.
	sc.Net.SASL.Handshake, sc.Net.SASL.Version = true, sarama.SASLHandshakeV1
	switch mechanism {
	case SASLScramSHA256:
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return &scramClient{mechanism: scram.Auth.AsSha256Mechanism}
		}
	case SASLScramSHA512:
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return &scramClient{mechanism: scram.Auth.AsSha512Mechanism}
		}
	}
}

// scramClient adapts franz-go's SCRAM client, already a dependency, to
// sarama's SCRAMClient, which sarama leaves to the application.
type scramClient struct {
	mechanism func(scram.Auth) sasl.Mechanism
	auth      scram.Auth
	session   sasl.Session
	done      bool
}

func (c *scramClient) Begin(user, password, authzID string) error {
	c.auth = scram.Auth{Zid: authzID, User: user, Pass: password}
	c.session, c.done = nil, false
	return nil
}

// Step answers the server's message; the first call, with no message,
// returns the client-first message.
func (c *scramClient) Step(challenge string) (string, error) {
	if c.session == nil {
		session, first, err := c.mechanism(c.auth).Authenticate(context.Background(), "")
		if err != nil {
			return "", err
		}
		c.session = session
		return string(first), nil
	}
	done, response, err := c.session.Challenge([]byte(challenge))
	if err != nil {
		return "", err
	}
	c.done = done
	return string(response), nil
}

func (c *scramClient) Done() bool { return c.done }

const (
	// checkTimeout bounds CheckConnection as a whole; checkStepTimeout
	// bounds each dial, read and write of it. sarama's 30 s defaults would
	// make a broker that swallows a handshake look like a hang.
	checkTimeout     = 30 * time.Second
	checkStepTimeout = 10 * time.Second
)

// CheckConnection connects to the bootstrap brokers the way every client
// will, and returns nil once one of them completes the TLS handshake, the
// SASL authentication and a metadata request. sarama's clients report any
// of these failures as "client has run out of available brokers to talk
// to"; the error of CheckConnection says which step failed and why, and
// wraps ErrBrokerUnreachable, ErrTLSHandshake or ErrSASLAuthentication.
// Only unreachable brokers are retried: a rejected certificate or password
// stays rejected.
func CheckConnection(ctx context.Context, cfg Config) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	retry := cfg.Sarama().Metadata.Retry
	var err error
	for attempt := 0; ; attempt++ {
		if err = checkBrokers(ctx, cfg); err == nil {
			return nil
		}
		if !errors.Is(err, ErrBrokerUnreachable) || attempt >= retry.Max || !restart.Sleep(ctx, retry.Backoff) {
			break
		}
	}
	return fmt.Errorf("failed to connect to kafka at %s: %w", strings.Join(cfg.Brokers, ","), err)
}

// checkBrokers tries each bootstrap broker in turn. Of their errors it
// returns the most telling: a TLS or SASL failure over an unreachable one.
func checkBrokers(ctx context.Context, cfg Config) error {
	var first error
	for _, addr := range cfg.Brokers {
		err := checkBroker(ctx, cfg, addr)
		if err == nil {
			return nil
		}
		if first == nil || errors.Is(first, ErrBrokerUnreachable) && !errors.Is(err, ErrBrokerUnreachable) {
			first = err
		}
	}
	return first
}

// checkBroker connects twice: without SASL first, since brokers answer
// ApiVersions before authentication, so that a TLS failure is not taken
// for a SASL one; then with the full configuration.
func checkBroker(ctx context.Context, cfg Config, addr string) error {
	transport := cfg
	transport.SASL = SASLConfig{}
	sc := checkConfig(transport)
	// Our request must be the first on the connection: the read of its
	// answer is what reports a broker's TLS alert, such as a missing
	// client certificate, which TLS 1.3 sends after the client's handshake.
	sc.ApiVersionsRequest = false
	_, err := onBroker(ctx, sc, addr, func(b *sarama.Broker) error {
		_, err := b.ApiVersions(&sarama.ApiVersionsRequest{})
		return err
	})
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		return err
	case isDialError(err) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: %w", ErrBrokerUnreachable, addr, err)
	case cfg.TLS.Enabled:
		hint := ""
		if errors.Is(err, os.ErrDeadlineExceeded) {
			hint = " (no TLS answer: does the broker speak TLS on this port?)"
		}
		return fmt.Errorf("%w with %s: %w%s", ErrTLSHandshake, addr, err, hint)
	case isClosed(err):
		return fmt.Errorf("%s closed the connection (%w); does it expect TLS?", addr, err)
	default:
		return fmt.Errorf("failed to talk to %s: %w", addr, err)
	}

	metadata := sarama.NewMetadataRequest(cfg.Sarama().Version, nil)
	opened, err := onBroker(ctx, checkConfig(cfg), addr, func(b *sarama.Broker) error {
		_, err := b.GetMetadata(metadata)
		return err
	})
	mechanism := cfg.SASL.mechanism()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return err
	case isDialError(err):
		return fmt.Errorf("%w: %s: %w", ErrBrokerUnreachable, addr, err)
	case !opened && mechanism != "":
		hint := ""
		if isClosed(err) {
			hint = " (the broker closed the connection: wrong username, password or mechanism?)"
		}
		return fmt.Errorf("%w: %s as %q at %s: %w%s", ErrSASLAuthentication, mechanism, cfg.SASL.Username, addr, err, hint)
	case isClosed(err) && mechanism == "":
		return fmt.Errorf("%s closed the connection (%w); does it require SASL authentication?", addr, err)
	default:
		return fmt.Errorf("failed to read metadata from %s: %w", addr, err)
	}
}

func checkConfig(cfg Config) *sarama.Config {
	sc := cfg.Sarama()
	sc.Net.DialTimeout, sc.Net.ReadTimeout, sc.Net.WriteTimeout = checkStepTimeout, checkStepTimeout, checkStepTimeout
	sc.ClientID = cfg.ClientID + "-check"
	return sc
}

// onBroker opens one connection with sc, which performs the TLS and SASL
// handshakes, and, if that worked (opened), runs request on it. sarama's
// broker ignores contexts, so a cancel abandons the call, which the step
// timeouts end.
func onBroker(ctx context.Context, sc *sarama.Config, addr string, request func(*sarama.Broker) error) (opened bool, err error) {
	type result struct {
		opened bool
		err    error
	}
	done := make(chan result, 1)
	go func() {
		b := sarama.NewBroker(addr)
		if err := b.Open(sc); err != nil {
			done <- result{err: err}
			return
		}
		defer b.Close()
		if _, err := b.Connected(); err != nil {
			done <- result{err: err}
			return
		}
		done <- result{opened: true, err: request(b)}
	}()
	select {
	case r := <-done:
		return r.opened, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isClosed reports a connection the broker closed. kfake closes it on a
// failed authentication where Kafka answers SASL_AUTHENTICATION_FAILED.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
