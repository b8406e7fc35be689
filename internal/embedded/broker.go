// Package embedded runs an in-process Kafka-protocol broker (franz-go's
// kfake) so that eventfold works with no Kafka installed. Any Kafka client
// can produce to it. It is a convenience for demos and development, not a
// replacement for a Kafka cluster.
package embedded

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the embedded broker.
type Config struct {
	// Addr is where the broker listens; kfake binds loopback only, so the
	// host must be 127.0.0.1 (or empty). Port 0 picks a free port.
	Addr string
	// DataDir persists the log, so a restart keeps every event. Empty
	// keeps everything in memory.
	DataDir string
	// Partitions is the default partition count of created topics.
	Partitions int
	Logger     *slog.Logger
	// TLS, when set, makes the broker accept TLS connections only, with
	// this server configuration; set ClientAuth to require client
	// certificates.
	TLS *tls.Config
	// SASLUsers, when any, make the broker require SASL authentication
	// from every client. Each is a superuser. With a DataDir, kfake keeps
	// the users it had, and after a restart they replace these.
	SASLUsers []SASLUser
}

// SASLUser is a user of the embedded broker.
type SASLUser struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism, User, Password string
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	_, err := c.port()
	return err
}

func (c Config) port() (int, error) {
	host, portText, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return 0, fmt.Errorf("failed to parse embedded broker address %q: %w", c.Addr, err)
	}
	if host != "" && host != "127.0.0.1" && host != "localhost" {
		return 0, fmt.Errorf("embedded broker address %q: the embedded broker listens on 127.0.0.1 only", c.Addr)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return 0, fmt.Errorf("embedded broker address %q has an invalid port", c.Addr)
	}
	return port, nil
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// Start starts the broker; Close stops it.
func Start(cfg Config) (*Broker, error) {
	port, err := cfg.port()
	if err != nil {
		return nil, err
	}
	opts := []kfake.Opt{kfake.Ports(port), kfake.ClusterID("eventfold-embedded")}
	if cfg.Partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(cfg.Partitions))
	}
	if cfg.DataDir != "" {
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("failed to resolve embedded broker data dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("failed to create embedded broker data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(dir))
	}
	if cfg.TLS != nil {
		opts = append(opts, kfake.TLS(cfg.TLS))
	}
	if len(cfg.SASLUsers) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range cfg.SASLUsers {
			opts = append(opts, kfake.Superuser(u.Mechanism, u.User, u.Password))
		}
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(logger{cfg.Logger.With("component", "embedded-broker")}))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("failed to start embedded broker on %s: %w", cfg.Addr, err)
	}
	addrs := cluster.ListenAddrs()
	if len(addrs) == 0 {
		cluster.Close()
		return nil, fmt.Errorf("embedded broker on %s has no listener", cfg.Addr)
	}
	return &Broker{cluster: cluster, addr: addrs[0]}, nil
}

// Addr is the broker's bootstrap address.
func (b *Broker) Addr() string { return b.addr }

// Cluster exposes the kfake cluster, for tests that inject faults.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker and flushes its log to disk.
func (b *Broker) Close() { b.cluster.Close() }

// logger adapts slog to kfake's logger, at kfake's own levels.
type logger struct{ l *slog.Logger }

func (l logger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	default:
		sl = slog.LevelDebug
	}
	if !l.l.Enabled(context.Background(), sl) {
		return
	}
	l.l.Log(context.Background(), sl, fmt.Sprintf(msg, args...))
}
