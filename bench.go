package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/eventfold/eventfold/internal/bench"
)

// `eventfold bench` measures the service end to end, each figure beside a
// baseline taken in the same run (see internal/bench). A missed target is
// reported, never an error: the exit code is 0 unless the bench broke.

type benchFlags struct {
	brokers      string
	brokerLabel  string
	kafkaVersion string
	partitions   int
	events       int
	customers    int
	clients      int
	writers      int
	duration     time.Duration
	scenarios    string
	out          string
	cpuProfile   string
	recoverProf  string
	lookupProf   string
	timeout      time.Duration
	seed         int
	keepTopics   bool
	storage      string
	logLevel     string
	kstreams     bool
	ksBuildDir   string
	ksHeapMiB    int
	rounds       int
	serveBinary  string
	bufferMiB    int
	erasure      string
	goka         bool
}

func parseBenchFlags(args []string, stderr io.Writer) (bench.Config, benchFlags, error) {
	var f benchFlags
	def := bench.DefaultConfig()
	fs := newFlagSet("bench", "eventfold bench: produce, fold, recover, look up and write against the embedded broker (default) or --brokers,\n"+
		"each beside a baseline measured in the same run; prints tables and PASS/MISS per target, and writes JSON with --out.")
	fs.SetOutput(stderr)
	fs.stringVar(&f.brokers, "brokers", "", "comma-separated Kafka bootstrap brokers; empty starts an embedded kfake broker on a free port with a temp data dir")
	fs.stringVar(&f.brokerLabel, "broker-label", "", `broker name in the report, e.g. "Apache Kafka 4.4.0"; default "embedded kfake" or "Kafka at <brokers>"`)
	fs.stringVar(&f.kafkaVersion, "kafka-version", def.KafkaVersion, "Kafka protocol version spoken by sarama (at least 2.1.0)")
	fs.intVar(&f.partitions, "partitions", def.Partitions, "partitions of the run's topics")
	fs.stringVar(&f.storage, "processor-storage", def.ProcessorStorage, "where the in-process processor keeps its table copy: leveldb (as serve) or memory")
	fs.intVar(&f.events, "events", def.Events, "events to produce and fold")
	fs.intVar(&f.customers, "customers", def.Customers, "customers the events are about; all are registered, so at most --events")
	fs.intVar(&f.clients, "clients", def.Clients, "concurrent HTTP clients of the lookup scenario")
	fs.intVar(&f.writers, "writers", def.Writers, "concurrent HTTP writers of the write scenario")
	fs.durationVar(&f.duration, "duration", def.Duration, "length of each load (lookups, writes) and of each of their baselines")
	fs.stringVar(&f.scenarios, "scenarios", "all", "comma-separated scenarios: fold,recover,lookup,write (all)")
	fs.stringVar(&f.out, "out", "", "write the report as JSON to this file")
	fs.stringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the fold (processor start to last table write) to this file")
	fs.stringVar(&f.recoverProf, "recover-cpuprofile", "", "write a CPU profile of the leveldb view's recovery (start to recovered) to this file")
	fs.stringVar(&f.lookupProf, "lookup-cpuprofile", "", "write a CPU profile of the lookup scenario (with its baseline rounds) to this file")
	fs.durationVar(&f.timeout, "timeout", 10*time.Minute, "give up (exit 1) when the whole run takes longer")
	fs.intVar(&f.seed, "seed", int(def.Seed), "seed of the generated events and of the loads")
	fs.boolVar(&f.keepTopics, "keep-topics", false, "leave the run's topics on --brokers (they are deleted by default)")
	fs.stringVar(&f.logLevel, "log-level", "warn", "log level of the service under test: debug, info, warn or error")
	fs.boolVar(&f.kstreams, "kstreams", true, "run the Kafka Streams baseline beside eventfold when java and mvn are on PATH (built with Maven from Maven Central)")
	fs.stringVar(&f.ksBuildDir, "kstreams-build-dir", def.KStreamsBuildDir, "where the Kafka Streams baseline is built (kstreams/) and Maven caches its dependencies (m2/)")
	fs.intVar(&f.ksHeapMiB, "kstreams-heap-mib", def.KStreamsHeapMiB, "the Kafka Streams JVM's -Xmx, in MiB")
	fs.intVar(&f.bufferMiB, "storage-buffer-mib", 0, "as serve's --storage-buffer-mib for the in-process service; 0 is serve's default")
	fs.stringVar(&f.erasure, "erasure", "off", "on runs the service with erasure on, as serve does by default: the events' personal fields sealed before they are produced (untimed), opened by lookups, sealed by writes; off keeps them in plaintext")
	fs.intVar(&f.rounds, "rounds", def.Rounds, "how many times eventfold and each baseline (bare goka, Kafka Streams) fold the topic, the order rotating")
	fs.boolVar(&f.goka, "goka", def.BareGoka, "run a bare goka fold of the same events (goka defaults, encoding/json, no validation) beside eventfold's")
	fs.stringVar(&f.serveBinary, "serve-binary", "", "eventfold binary of the serve restarts (an older build, to compare); empty is this binary")
	if err := fs.parse(args); err != nil {
		return def, f, err
	}
	cfg := def
	var err error
	if cfg.Scenarios, err = bench.ParseScenarios(f.scenarios); err != nil {
		return cfg, f, fmt.Errorf("%w: --scenarios: %w", errUsage, err)
	}
	cfg.Brokers, cfg.BrokerLabel, cfg.KafkaVersion = splitList(f.brokers), f.brokerLabel, f.kafkaVersion
	cfg.Partitions, cfg.Events, cfg.Customers = f.partitions, f.events, f.customers
	cfg.Clients, cfg.Writers, cfg.Duration = f.clients, f.writers, f.duration
	cfg.Seed, cfg.KeepTopics, cfg.ProcessorStorage = int64(f.seed), f.keepTopics, f.storage
	cfg.StorageBuffer = f.bufferMiB << 20
	cfg.KStreams, cfg.KStreamsBuildDir, cfg.KStreamsHeapMiB, cfg.Rounds = f.kstreams, f.ksBuildDir, f.ksHeapMiB, f.rounds
	switch f.erasure {
	case "on", "off":
		cfg.Erasure = f.erasure == "on"
	default:
		return cfg, f, fmt.Errorf("%w: --erasure %q must be on or off", errUsage, f.erasure)
	}
	cfg.BareGoka = f.goka
	if err := cfg.Validate(); err != nil {
		return cfg, f, fmt.Errorf("%w: %w", errUsage, err)
	}
	if f.timeout <= 0 {
		return cfg, f, fmt.Errorf("%w: --timeout %s must be positive", errUsage, f.timeout)
	}
	return cfg, f, nil
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, f, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, "text", f.logLevel)
	if err != nil {
		return err
	}
	routeSaramaLogs(log)
	cfg.Logger = log
	cfg.Progress, _ = newLogger(stderr, "text", "info") // "info" always parses
	// The serve restart needs an eventfold binary, this very one unless
	// --serve-binary names another; without one that measurement is
	// skipped.
	if exe, err := os.Executable(); err == nil {
		cfg.ServeBinary = exe
	}
	if f.serveBinary != "" {
		cfg.ServeBinary = f.serveBinary
	}
	if cfg.KStreams {
		if err := bench.KStreamsAvailable(); err != nil {
			cfg.KStreams = false
			cfg.Progress.Warn("skipping the Kafka Streams baseline", "reason", err)
		}
	}
	var profiles []*os.File
	for _, p := range []struct {
		path string
		into *io.Writer
	}{{f.cpuProfile, &cfg.FoldProfile}, {f.recoverProf, &cfg.RecoverProfile}, {f.lookupProf, &cfg.LookupProfile}} {
		if p.path == "" {
			continue
		}
		prof, err := os.Create(p.path)
		if err != nil {
			return fmt.Errorf("failed to create the CPU profile: %w", err)
		}
		profiles = append(profiles, prof)
		*p.into = prof
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	report, err := bench.Run(ctx, cfg)
	for _, prof := range profiles {
		if cerr := prof.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("failed to write the CPU profile %s: %w", prof.Name(), cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("failed to run the bench: %w", err)
	}
	if err := report.Print(stdout); err != nil {
		return fmt.Errorf("failed to print the report: %w", err)
	}
	if f.out == "" {
		return nil
	}
	raw, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode the report: %w", err)
	}
	if err := os.WriteFile(f.out, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("failed to write the report: %w", err)
	}
	return nil
}
