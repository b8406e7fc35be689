package main

import (
	"bytes"
	"context"
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
		{"serve bad log level", []string{"serve", "--log-level", "loud"}, nil, 2, "log level"},
		{"serve old kafka version", []string{"serve", "--brokers", "127.0.0.1:1", "--kafka-version", "0.10.2.0"}, nil, 2, "older than 2.1.0"},
		{"embedded broker off loopback", []string{"serve", "--embedded-addr", "10.0.0.1:9092"}, nil, 1, "127.0.0.1 only"},
		{"produce to no broker", []string{"produce", "--brokers", "127.0.0.1:1", "--file", "main.go"}, nil, 1, "failed to create producer"},
		{"produce unknown content mode", []string{"produce", "--content-mode", "avro"}, nil, 2, "neither \"structured\" nor \"binary\""},
		{"produce missing file", []string{"produce", "--file", "does-not-exist.jsonl"}, nil, 1, "failed to open events file"},
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
