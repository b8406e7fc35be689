package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKgoLoggerLevels(t *testing.T) {
	tests := []struct {
		name      string
		handler   slog.Level
		wantLevel kgo.LogLevel
		log       kgo.LogLevel
		wantLine  string // "" when nothing is written
	}{
		{"warn at info", slog.LevelInfo, kgo.LogLevelWarn, kgo.LogLevelWarn, "level=WARN"},
		{"error at info", slog.LevelInfo, kgo.LogLevelWarn, kgo.LogLevelError, "level=ERROR"},
		{"info left out at info", slog.LevelInfo, kgo.LogLevelWarn, kgo.LogLevelInfo, ""},
		{"debug at debug", slog.LevelDebug, kgo.LogLevelDebug, kgo.LogLevelDebug, "level=DEBUG"},
		{"info at debug", slog.LevelDebug, kgo.LogLevelDebug, kgo.LogLevelInfo, "level=INFO"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := KgoLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: test.handler})), "table-producer")
			if got := l.Level(); got != test.wantLevel {
				t.Fatalf("Level() = %v, want %v", got, test.wantLevel)
			}
			// franz-go only calls Log at or above Level.
			if test.log <= l.Level() {
				l.Log(test.log, "produce request failed", "broker", 1)
			}
			line := buf.String()
			switch {
			case test.wantLine == "" && line != "":
				t.Errorf("wrote %q, want nothing", line)
			case test.wantLine != "" && (!strings.Contains(line, test.wantLine) || !strings.Contains(line, "broker=1") || !strings.Contains(line, "component=table-producer")):
				t.Errorf("wrote %q, want %s with the key-values and the component", line, test.wantLine)
			}
		})
	}
}
