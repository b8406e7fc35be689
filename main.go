// Command eventfold is an event-sourcing service on Apache Kafka: it folds
// each customer's events into a goka group table and serves the current
// state over HTTP.
//
//	eventfold serve     run the processor, the view and the HTTP server
//	eventfold produce   produce JSON-lines events to the events topic
//	eventfold rebuild   fold the whole events topic into a new group table
//	eventfold redact    rewrite the events topic without erased customers' readable personal data
//	eventfold bench     measure the service against baselines, like Kafka's perf tools
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `eventfold: event-sourced customer state on Apache Kafka

Usage:
  eventfold serve [flags]     fold the events topic and serve lookups over HTTP
  eventfold produce [flags]   produce JSON-lines events (stdin or --file)
  eventfold rebuild [flags]   fold the whole events topic into a new --group's table, then stop
  eventfold redact [flags]    copy the events topic into a new one without erased customers' readable personal data
  eventfold healthcheck       exit 0 when a server's /healthz answers 200
  eventfold bench [flags]     measure fold, recover, lookup and write against baselines
  eventfold version           print the version

Run "eventfold <command> --help" for the flags of a command.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "produce":
		err = produce(ctx, args[1:], stdin, stdout, stderr)
	case "rebuild":
		err = runRebuild(ctx, args[1:], stdout, stderr)
	case "redact":
		err = runRedact(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		err = healthcheck(ctx, args[1:], stdout, stderr)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "eventfold", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s\n", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "eventfold:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "eventfold:", err)
		return 1
	}
}

var errUsage = errors.New("usage")

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: log level %q is not debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: log format %q is not text or json", errUsage, format)
}

// buildInfo is the eventfold_build_info gauge: 1, labelled with versions.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "eventfold_build_info",
		Help:        "Build information of the running eventfold; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

// routeSaramaLogs sends sarama's logs, which go to a package variable, to
// the structured logger at debug level. This is the one global main sets:
// sarama offers no other way.
func routeSaramaLogs(log *slog.Logger) {
	sarama.Logger = slog.NewLogLogger(log.With("component", "sarama").Handler(), slog.LevelDebug)
}
