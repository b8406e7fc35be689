package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
)

// KafkaEnv names the environment variable that points the real-Kafka
// tests at a broker, e.g. 127.0.0.1:19092.
const KafkaEnv = "EVENTFOLD_TEST_KAFKA"

// RequireKafka returns the bootstrap address of the real Apache Kafka the
// test must run against. Without one the test fails, saying how to start
// it; only `go test -short` skips it, which the suite never uses.
func RequireKafka(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(KafkaEnv)
	if addr != "" {
		return addr
	}
	const how = "no Apache Kafka for this test: start one with `deploy/kafka/kafka.sh start` and set " +
		KafkaEnv + "=127.0.0.1:19092 (scripts/test.sh does both)"
	if testing.Short() {
		t.Skip(how + " [skipped in -short mode only]")
	}
	t.Fatal(how)
	return ""
}

// UniqueName returns prefix plus a random suffix, for topics and groups
// that must not collide with earlier runs on a persistent broker.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return prefix + "-" + hex.EncodeToString(b)
}

// StartKfake starts an in-memory kfake broker in the test process on a
// free loopback port and returns its address; the cleanup closes it.
func StartKfake(t testing.TB, cfg embedded.Config) string {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	b, err := embedded.Start(cfg)
	if err != nil {
		t.Fatalf("failed to start kfake: %v", err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

// StartRestartableKfake starts kfake like StartKfake, with its log in a
// temp dir, and returns its address and a function that closes it and
// starts it again on the same address and data, as a broker restart does:
// the clients' connections break, and they must dial again.
func StartRestartableKfake(t testing.TB, cfg embedded.Config) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = l.Addr().String()
	l.Close() // the broker must come back on the same port
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	b, err := embedded.Start(cfg)
	if err != nil {
		t.Fatalf("failed to start kfake: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	restart := func() {
		t.Helper()
		b.Close()
		if b, err = embedded.Start(cfg); err != nil {
			t.Fatalf("failed to start kfake again on %s: %v", cfg.Addr, err)
		}
	}
	return cfg.Addr, restart
}

// Within calls f every 200 ms until it returns nil, and fails the test
// with what and f's last error once timeout has passed.
func Within(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not within %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
