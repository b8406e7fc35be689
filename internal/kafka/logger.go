package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// GokaLogger routes goka's printf-style logs into a structured logger at
// debug level: goka logs every partition state change, which is noise at
// info level.
func GokaLogger(l *slog.Logger, component string) goka.Logger {
	return gokaLogger{l: l.With("component", component)}
}

type gokaLogger struct{ l *slog.Logger }

func (g gokaLogger) Print(args ...any)   { g.log(fmt.Sprint(args...)) }
func (g gokaLogger) Println(args ...any) { g.log(fmt.Sprint(args...)) }
func (g gokaLogger) Printf(format string, args ...any) {
	g.log(fmt.Sprintf(format, args...))
}

func (g gokaLogger) log(msg string) {
	g.l.Log(context.Background(), slog.LevelDebug, strings.TrimSpace(msg))
}

// KgoLogger routes franz-go's logs into a structured logger: warnings and
// errors always, its debug lines when the logger takes debug. franz-go's
// info lines (each connection, each metadata refresh) are left out unless
// debug is on.
func KgoLogger(l *slog.Logger, component string) kgo.Logger {
	return kgoLogger{l: l.With("component", component)}
}

type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	case kgo.LogLevelInfo:
		lvl = slog.LevelInfo
	}
	k.l.Log(context.Background(), lvl, msg, keyvals...)
}
