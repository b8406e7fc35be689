package service

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/web"
)

func testConfig(t *testing.T) Config {
	t.Helper()
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{testkit.StartKfake(t, embedded.Config{Partitions: 3})}
	w := web.DefaultConfig()
	w.Addr = "127.0.0.1:0"
	return Config{Kafka: kc, Topics: kafka.Topics{Events: "events", Group: "group", Partitions: 3, Replication: 1},
		DataDir: t.TempDir(), Web: w, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Before the processor has joined its group, Kafka has no committed
// offsets for it (kfake: GROUP_ID_NOT_FOUND) and the view has no
// positions: the lag gauges cannot be read. The scrape answered 500 then,
// hiding every other metric for the first seconds of every start.
func TestMetricsBeforeThePartsRun(t *testing.T) {
	svc, err := New(context.Background(), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	rec := httptest.NewRecorder()
	svc.Server.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics before the parts run: status %d: %.300s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{`eventfold_processor_lag_records{partition="0"} 0`, "eventfold_ready 0", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	svc, err := New(context.Background(), testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	client := testkit.NewClient("http://" + svc.Addr().String())
	client.WaitReady(t, 30*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of the cancel")
	}
}

func TestValidate(t *testing.T) {
	base := Config{Kafka: kafka.DefaultConfig(), Topics: kafka.Topics{Events: "e", Group: "g", Partitions: 3, Replication: 1}, Web: web.DefaultConfig()}
	base.Kafka.Brokers = []string{"127.0.0.1:9092"}
	tests := []struct {
		name   string
		change func(*Config)
		ok     bool
	}{
		{"valid", func(*Config) {}, true},
		{"no brokers", func(c *Config) { c.Kafka.Brokers = nil }, false},
		{"no group", func(c *Config) { c.Topics.Group = "" }, false},
		{"negative buffer", func(c *Config) { c.StorageBuffer = -1 }, false},
		{"no partitions", func(c *Config) { c.Topics.Partitions = 0 }, false},
		{"buffer over 16 GiB", func(c *Config) { c.StorageBuffer = MaxStorageBuffer + 1 }, false},
		{"bad web config", func(c *Config) { c.Web.MaxWait = 0 }, false},
		{"standby replicas, partitioned", func(c *Config) { c.ServeMode, c.StandbyReplicas = ModePartitioned, 2 }, true},
		{"standby replicas of a replica", func(c *Config) { c.StandbyReplicas = 1 }, false},
		{"too many standby replicas", func(c *Config) { c.ServeMode, c.StandbyReplicas = ModePartitioned, 9 }, false},
		{"negative standby replicas", func(c *Config) { c.ServeMode, c.StandbyReplicas = ModePartitioned, -1 }, false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			c := base
			test.change(&c)
			if err := c.Validate(); (err == nil) != test.ok {
				t.Errorf("Validate() = %v, want ok %v", err, test.ok)
			}
		})
	}
}
