package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		code     int
		contains string
	}{
		{"no command", nil, nil, 2, "Usage:"},
		{"unknown command", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"help", []string{"help"}, nil, 0, "eventfold serve"},
		{"version", []string{"version"}, nil, 0, "eventfold dev"},
		{"serve help lists env twins", []string{"serve", "--help"}, nil, 0, "EVENTFOLD_HTTP_ADDR"},
		{"serve bad flag", []string{"serve", "--nope"}, nil, 2, "flag provided but not defined"},
		{"serve zero partitions", []string{"serve", "--partitions", "0"}, nil, 2, "--partitions 0"},
		{"serve bad env", []string{"serve"}, map[string]string{"EVENTFOLD_PARTITIONS": "six"}, 2, "EVENTFOLD_PARTITIONS"},
		{"serve env gives the value", []string{"serve"}, map[string]string{"EVENTFOLD_PARTITIONS": "0"}, 2, "--partitions 0"},
		{"flag wins over env", []string{"serve", "--partitions", "0"}, map[string]string{"EVENTFOLD_PARTITIONS": "3"}, 2, "--partitions 0"},
		{"standby replicas need partitioned mode", []string{"serve", "--standby-replicas", "1"}, nil, 2, "--standby-replicas 1"},
		{"standby replicas bounded", []string{"serve", "--serve-mode", "partitioned"}, map[string]string{"EVENTFOLD_STANDBY_REPLICAS": "9"}, 2, "--standby-replicas 9 must be from 0 to 8"},
		{"standby replicas not negative", []string{"serve", "--serve-mode", "partitioned", "--standby-replicas", "-1"}, nil, 2, "--standby-replicas -1"},
		{"instance id with a slash", []string{"serve", "--instance-id", "pod/0"}, nil, 2, `--instance-id "pod/0"`},
		{"instance id from env, too long", []string{"serve"}, map[string]string{"EVENTFOLD_INSTANCE_ID": strings.Repeat("x", 250)}, 2, "longer than 249"},
		{"session timeout below the brokers' minimum", []string{"serve", "--instance-id", "eventfold-0", "--session-timeout", "1s"}, nil, 2, "session timeout 1s must be from 6s to 5m0s"},
		{"instance id before kafka 2.3", []string{"serve", "--brokers", "127.0.0.1:1", "--kafka-version", "2.2.0", "--instance-id", "eventfold-0"}, nil, 2, "need Version >= 2.3"},
		{"serve bad log level", []string{"serve", "--log-level", "loud"}, nil, 2, "log level"},
		{"serve old kafka version", []string{"serve", "--brokers", "127.0.0.1:1", "--kafka-version", "0.10.2.0"}, nil, 2, "older than 2.1.0"},
		{"embedded broker off loopback", []string{"serve", "--embedded-addr", "10.0.0.1:9092"}, nil, 1, "127.0.0.1 only"},
		{"produce to no broker", []string{"produce", "--brokers", "127.0.0.1:1", "--file", "main.go"}, nil, 1, "failed to create producer"},
		{"produce unknown content mode", []string{"produce", "--content-mode", "avro"}, nil, 2, "neither \"structured\" nor \"binary\""},
		{"produce missing file", []string{"produce", "--file", "does-not-exist.jsonl"}, nil, 1, "failed to open events file"},
		{"redact help", []string{"redact", "--help"}, nil, 0, "-to"},
		{"redact without --to", []string{"redact", "--brokers", "127.0.0.1:1"}, nil, 2, "the new events topic \"\" must be named"},
		{"redact onto itself", []string{"redact", "--brokers", "127.0.0.1:1", "--to", "customer-events"}, nil, 2, "differ from \"customer-events\""},
		{"healthcheck nothing listening", []string{"healthcheck", "--url", "http://127.0.0.1:1/healthz"}, nil, 1, "failed to probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, strings.NewReader(""), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != tt.code {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.code, out)
			}
			if !strings.Contains(out, tt.contains) {
				t.Errorf("output does not contain %q:\n%s", tt.contains, out)
			}
		})
	}
}

// TestServeRefusesReadTokensWithoutWriteTokens: guarded reads beside
// writes that no token could make are refused at start, with the reason,
// before anything connects.
func TestServeRefusesReadTokensWithoutWriteTokens(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# readers\nread-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		contains string
	}{
		{"flag", []string{"serve", "--read-token-file", tokens}, nil, "--read-token-file without --write-token-file"},
		{"environment", []string{"serve"}, map[string]string{"EVENTFOLD_READ_TOKEN_FILE": tokens}, "--read-token-file without --write-token-file"},
		{"empty write token file", []string{"serve", "--read-token-file", tokens, "--write-token-file", os.DevNull}, nil, "holds no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			// An address nothing listens on: a start that went past the
			// check would fail differently.
			code := run(context.Background(), append(tt.args, "--brokers", "127.0.0.1:1"), strings.NewReader(""), &stdout, &stderr)
			if out := stdout.String() + stderr.String(); code != 2 || !strings.Contains(out, tt.contains) {
				t.Errorf("exit code %d, want 2, with %q in:\n%s", code, tt.contains, out)
			}
		})
	}
}
