package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/eventfold/eventfold/internal/cluster"
	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	"github.com/eventfold/eventfold/internal/service"
	"github.com/eventfold/eventfold/internal/store"
	"github.com/eventfold/eventfold/web"
)

// commonFlags are the flags that say where Kafka and the topics are.
type commonFlags struct {
	brokers      string
	embeddedAddr string
	dataDir      string
	eventsTopic  string
	group        string
	partitions   int
	replication  int
	kafkaVersion string
	logFormat    string
	logLevel     string
	security     kafkaSecurityFlags
	kekFile      string
	erasure      string
}

func (c *commonFlags) register(fs *flagSet) {
	fs.stringVar(&c.brokers, "brokers", "", "comma-separated Kafka bootstrap brokers; empty starts the embedded broker")
	fs.stringVar(&c.embeddedAddr, "embedded-addr", "127.0.0.1:9092", "listen address of the embedded broker (loopback only), used when --brokers is empty")
	fs.stringVar(&c.dataDir, "data-dir", "./data", "directory of the view's storage and the embedded broker's log")
	fs.stringVar(&c.eventsTopic, "events-topic", "customer-events", "topic of customer events, keyed by customer id")
	fs.stringVar(&c.group, "group", "customers", "goka group; its table topic is <group>-table")
	fs.intVar(&c.partitions, "partitions", 6, "partition count of topics created at start")
	fs.intVar(&c.replication, "replication", 1, "replication factor of topics created at start")
	fs.stringVar(&c.kafkaVersion, "kafka-version", kafka.DefaultVersion, "Kafka protocol version spoken by sarama (at least 2.1.0)")
	fs.stringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.stringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.stringVar(&c.kekFile, "kek-file", "", "file of key-encryption keys that wrap the customers' data keys (README: Personal data and erasure); empty generates one under --data-dir with the embedded broker")
	fs.stringVar(&c.erasure, "erasure", "on", "on: seal personal data with per-customer keys that an erasure deletes; off: keep it in plaintext")
	c.security.register(fs)
}

// keks reads the key-encryption keys, or returns nil with --erasure=off.
// Without --kek-file, only the embedded broker gets a generated one: a
// KEK beside the data it protects is for a quick start, not production.
func (c *commonFlags) keks(log *slog.Logger) (*keys.KEKs, error) {
	switch {
	case c.erasure == "off":
		log.Warn("erasure is off: personal data is written in plaintext, and an erasure cannot reach the events topic")
		return nil, nil
	case c.erasure != "on":
		return nil, fmt.Errorf("%w: --erasure %q must be on or off", errUsage, c.erasure)
	case c.kekFile != "":
		k, err := keys.LoadKEKs(c.kekFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --kek-file: %w", errUsage, err)
		}
		return k, nil
	case c.brokers != "":
		return nil, fmt.Errorf("%w: no --kek-file: give the file of key-encryption keys (README: Personal data and erasure), or --erasure=off to keep personal data in plaintext", errUsage)
	}
	path := filepath.Join(c.dataDir, "kek")
	k, created, err := keys.LoadOrCreateKEKs(path)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("generated a key-encryption key beside the data it protects; give --kek-file in production", "path", path)
	} else {
		log.Warn("using the key-encryption key kept beside the data it protects; give --kek-file in production", "path", path)
	}
	return k, nil
}

func (c *commonFlags) validate() error {
	// The flags' own words first; kafka.Topics.Validate is the rule.
	switch {
	case c.partitions < 1 || c.partitions > kafka.MaxPartitions:
		return fmt.Errorf("%w: --partitions %d must be from 1 to %d", errUsage, c.partitions, kafka.MaxPartitions)
	case c.replication < 1 || c.replication > 32767:
		return fmt.Errorf("%w: --replication %d must be from 1 to 32767", errUsage, c.replication)
	}
	if err := c.topics().Validate(); err != nil {
		return fmt.Errorf("%w: %w (--events-topic, --group, --partitions, --replication)", errUsage, err)
	}
	return nil
}

func (c *commonFlags) topics() kafka.Topics {
	return kafka.Topics{Events: c.eventsTopic, Group: c.group, Partitions: int32(c.partitions), Replication: int16(c.replication)}
}

// start makes the command's logger, routes sarama's logs into it and
// connects to Kafka (see connect); stop releases the embedded broker.
func (c *commonFlags) start(ctx context.Context, stderr io.Writer) (*slog.Logger, kafka.Config, func(), error) {
	log, err := newLogger(stderr, c.logFormat, c.logLevel)
	if err != nil {
		return nil, kafka.Config{}, nil, err
	}
	routeSaramaLogs(log)
	kc, stop, err := c.connect(ctx, log)
	return log, kc, stop, err
}

// connect returns the Kafka configuration, starting the embedded broker
// when no brokers are given. The returned stop function closes it. With
// TLS or SASL it checks that the brokers accept the connection, so that a
// rejected certificate or password stops the start with its reason.
func (c *commonFlags) connect(ctx context.Context, log *slog.Logger) (kafka.Config, func(), error) {
	kc := kafka.DefaultConfig()
	kc.Version = c.kafkaVersion
	kc.Brokers = splitList(c.brokers)
	if err := c.security.apply(&kc); err != nil {
		return kc, nil, err
	}
	external := len(kc.Brokers) > 0
	if !external && (kc.TLS.Enabled || kc.SASL.Mechanism != "") {
		return kc, nil, fmt.Errorf("%w: the --kafka-tls and --kafka-sasl flags need --brokers; the embedded broker speaks plaintext", errUsage)
	}
	stop := func() {}
	if !external {
		broker, err := embedded.Start(embedded.Config{
			Addr: c.embeddedAddr, DataDir: filepath.Join(c.dataDir, "kafka"), Partitions: c.partitions, Logger: log,
		})
		if err != nil {
			return kc, nil, err
		}
		log.Info("embedded Kafka broker started; produce to it with any Kafka client",
			"bootstrap", broker.Addr(), "data_dir", filepath.Join(c.dataDir, "kafka"))
		kc.Brokers = []string{broker.Addr()}
		stop = broker.Close
	}
	if err := kc.Validate(); err != nil {
		stop()
		return kc, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if external {
		c.security.warn(log, kc)
		if err := c.security.check(ctx, kc); err != nil {
			return kc, nil, err
		}
		log.Info("connecting to kafka", "brokers", strings.Join(kc.Brokers, ","), "tls", kc.TLS.Enabled, "sasl_mechanism", kc.SASL.Mechanism)
	}
	return kc, stop, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	var (
		common                        commonFlags
		httpAddr                      string
		maxWait                       time.Duration
		readTokenFile, writeTokenFile string
		tlsCert, tlsKey               string
		pprofAddr                     string
		storageBufferMiB              int
		limits                        web.Config
		serveMode, advertisedURL      string
		standbyReplicas               int
		membership                    kafka.Membership
	)
	fs := newFlagSet("serve", "eventfold serve: fold the events topic into the group table and serve lookups over HTTP.")
	fs.SetOutput(stderr)
	common.register(fs)
	fs.stringVar(&httpAddr, "http-addr", ":8080", "HTTP listen address")
	fs.stringVar(&serveMode, "serve-mode", service.ModeReplica, "replica: every instance holds the whole table; partitioned: each instance holds the partitions it owns and forwards other reads to their owner (README: Serve modes)")
	fs.stringVar(&advertisedURL, "advertised-url", "", "base URL the other instances reach this one at, such as http://eventfold-0.eventfold:8080; empty derives it from --http-addr (the host name for a listener on every interface)")
	fs.intVar(&standbyReplicas, "standby-replicas", 0, fmt.Sprintf("partitioned mode: other instances that keep a warm copy of each partition, to answer its reads while its owner stops or moves it (0 to %d, at most the instances less one; each copy costs its partition's disk)", cluster.MaxStandbyReplicas))
	fs.stringVar(&membership.InstanceID, "instance-id", "", "static membership of the processor's consumer group (Kafka's group.instance.id): a stable id unique to this instance, such as its pod's name, keeps its partitions through a clean restart with no rebalance; up to 249 of a-z A-Z 0-9 . _ -; empty joins as a dynamic member (README: Static membership)")
	fs.durationVar(&membership.SessionTimeout, "session-timeout", 0, fmt.Sprintf("how long the group waits for an instance that stopped sending heartbeats before it moves its partitions (%s to %s); 0 means %s, or %s with --instance-id, which a restart must not outlast", kafka.MinSessionTimeout, kafka.MaxSessionTimeout, kafka.DynamicSessionTimeout, kafka.StaticSessionTimeout))
	fs.durationVar(&maxWait, "max-wait", 30*time.Second, "upper bound of ?wait= on reads and writes")
	fs.stringVar(&writeTokenFile, "write-token-file", "", "file of bearer tokens (one per line) required to append events; empty, with --read-token-file empty too, leaves writes open")
	fs.stringVar(&readTokenFile, "read-token-file", "", "file of bearer tokens (one per line) required to read; empty leaves reads open; needs --write-token-file")
	fs.stringVar(&tlsCert, "http-tls-cert", "", "PEM certificate file: serve HTTPS (with --http-tls-key)")
	fs.stringVar(&tlsKey, "http-tls-key", "", "PEM private key file of --http-tls-cert")
	fs.intVar(&storageBufferMiB, "storage-buffer-mib", store.DefaultBuffer>>20, "MiB of table writes the processor and the view each hold in memory before writing them to leveldb; more is faster to recover and uses more memory")
	fs.stringVar(&pprofAddr, "pprof-addr", "", "listen address of Go's pprof profiles under /debug/pprof/, e.g. 127.0.0.1:6060; empty serves none")
	defaults := web.DefaultConfig()
	fs.intVar(&limits.MaxWatchers, "max-watchers", defaults.MaxWatchers, "open watch streams allowed in all")
	fs.intVar(&limits.MaxWatchersPerClient, "max-watchers-per-client", defaults.MaxWatchersPerClient, "open watch streams allowed per client IP; 0 = no per-client bound (behind a proxy)")
	fs.intVar(&limits.MaxWaiters, "max-waiters", defaults.MaxWaiters, "requests waiting for a version or a decision allowed in all")
	fs.intVar(&limits.MaxWaitersPerClient, "max-waiters-per-client", defaults.MaxWaitersPerClient, "waiting requests allowed per client IP; 0 = no per-client bound")
	fs.intVar(&limits.MaxConnections, "max-connections", defaults.MaxConnections, "open HTTP connections allowed in all, idle ones included; more are closed at accept")
	fs.intVar(&limits.MaxConnectionsPerClient, "max-connections-per-client", defaults.MaxConnectionsPerClient, "open HTTP connections allowed per client IP; 0 = no per-client bound (behind a proxy)")
	fs.intVar(&limits.MaxHistoryReads, "max-history-reads", defaults.MaxHistoryReads, "history and time-travel reads (events pages, ?version=, ?at=) allowed at a time in all")
	fs.intVar(&limits.MaxHistoryReadsPerClient, "max-history-reads-per-client", defaults.MaxHistoryReadsPerClient, "history and time-travel reads allowed at a time per client IP; 0 = no per-client bound")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := common.validate(); err != nil {
		return err
	}
	if serveMode != service.ModeReplica && serveMode != service.ModePartitioned {
		return fmt.Errorf("%w: --serve-mode %q must be %s or %s", errUsage, serveMode, service.ModeReplica, service.ModePartitioned)
	}
	if standbyReplicas < 0 || standbyReplicas > cluster.MaxStandbyReplicas || standbyReplicas > 0 && serveMode != service.ModePartitioned {
		return fmt.Errorf("%w: --standby-replicas %d must be from 0 to %d, and needs --serve-mode %s", errUsage, standbyReplicas, cluster.MaxStandbyReplicas, service.ModePartitioned)
	}
	if err := membership.Validate(common.kafkaVersion); err != nil {
		return fmt.Errorf("%w: --instance-id %q, --session-timeout %s: %w", errUsage, membership.InstanceID, membership.SessionTimeout, err)
	}
	if storageBufferMiB < 1 || storageBufferMiB > service.MaxStorageBuffer>>20 {
		// The service checks its budget too; the flag's unit is MiB.
		return fmt.Errorf("%w: --storage-buffer-mib %d must be from 1 to %d", errUsage, storageBufferMiB, service.MaxStorageBuffer>>20)
	}
	readers, writers, err := readTokenFiles(readTokenFile, writeTokenFile)
	if err != nil {
		return err
	}
	log, kc, stopBroker, err := common.start(ctx, stderr)
	if err != nil {
		return err
	}
	defer stopBroker()

	webCfg := web.DefaultConfig()
	webCfg.Addr, webCfg.MaxWait = httpAddr, maxWait
	webCfg.TLSCertFile, webCfg.TLSKeyFile = tlsCert, tlsKey
	webCfg.MaxWatchers, webCfg.MaxWatchersPerClient = limits.MaxWatchers, limits.MaxWatchersPerClient
	webCfg.MaxWaiters, webCfg.MaxWaitersPerClient = limits.MaxWaiters, limits.MaxWaitersPerClient
	webCfg.MaxHistoryReads, webCfg.MaxHistoryReadsPerClient = limits.MaxHistoryReads, limits.MaxHistoryReadsPerClient
	webCfg.MaxConnections, webCfg.MaxConnectionsPerClient = limits.MaxConnections, limits.MaxConnectionsPerClient
	webCfg.ReadTokens, webCfg.WriteTokens = readers, writers
	webCfg.AdvertisedURL = advertisedURL
	keks, err := common.keks(log)
	if err != nil {
		return err
	}
	svc, err := service.New(ctx, service.Config{Kafka: kc, Topics: common.topics(), DataDir: common.dataDir, KEKs: keks,
		StorageBuffer: storageBufferMiB << 20, Web: webCfg, ServeMode: serveMode, StandbyReplicas: standbyReplicas, Membership: membership, Collectors: []prometheus.Collector{buildInfo()}, Logger: log})
	if err != nil {
		return err
	}

	log.Info("web page: open it in a browser", "url", pageURL(svc.Addr(), tlsCert != ""))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return svc.Run(gctx) })
	if pprofAddr != "" {
		g.Go(func() error { return runDebugServer(gctx, pprofAddr, log) })
	}
	err = g.Wait()
	log.Info("eventfold stopped", "error", err)
	return err
}

// readTokenFiles reads the read and the write tokens. Read tokens without
// write tokens are refused: the server would then take no write at all
// (a write needs a write token as soon as any token is set, so that
// guarded reads never sit beside open writes), which is never what an
// operator who guards reads means.
func readTokenFiles(readPath, writePath string) (read, write []string, err error) {
	if read, err = readTokens(readPath); err != nil {
		return nil, nil, err
	}
	if write, err = readTokens(writePath); err != nil {
		return nil, nil, err
	}
	if len(read) > 0 && len(write) == 0 {
		return nil, nil, fmt.Errorf("%w: --read-token-file without --write-token-file: reads would need a token and no token could write; "+
			"give --write-token-file too (the same file makes its tokens read and write)", errUsage)
	}
	return read, write, nil
}

// readTokens reads bearer tokens, one per line; blank lines and lines
// starting with # are skipped. An empty path means no tokens.
func readTokens(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read token file: %w", err)
	}
	var tokens []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			tokens = append(tokens, line)
		}
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%w: token file %s holds no token", errUsage, path)
	}
	return tokens, nil
}

// pageURL is the address of the web page on this machine: a listener on
// every interface is reached at localhost.
func pageURL(addr net.Addr, https bool) string {
	scheme := "http"
	if https {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}
