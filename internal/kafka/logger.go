package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/lovoo/goka"
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
