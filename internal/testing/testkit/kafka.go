package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

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
