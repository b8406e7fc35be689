// Package service assembles eventfold: the topics, the processor that
// folds the events topic into the table, the view that serves it, the
// history reader, the publisher of HTTP writes, the HTTP server with the
// web page, and the metrics of them all.
//
// It is the one wiring of the product. `eventfold serve` is flag parsing
// plus New and Run; the bench and the end-to-end tests call the same two,
// so that what they measure and test is what ships.
package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/eventfold/eventfold/internal/cluster"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
	"github.com/eventfold/eventfold/web"
	"github.com/eventfold/eventfold/web/ui"
)

// MaxStorageBuffer bounds Config.StorageBuffer: 16 GiB.
const MaxStorageBuffer = 16 << 30

// Config configures the service.
type Config struct {
	Kafka  kafka.Config
	Topics kafka.Topics
	// DataDir holds the view's storage (view/<group>) and the processor's
	// scratch copy of the table (processor/<group>). Empty keeps both in
	// memory, for tests.
	DataDir string
	// ProcessorInMemory keeps the processor's scratch copy in memory even
	// with a DataDir: the bench compares it with leveldb.
	ProcessorInMemory bool
	// StorageBuffer is the bytes of table writes the processor and the
	// view each hold in memory before writing them to leveldb; 0 means
	// their default.
	StorageBuffer int
	// RestartBackoff is the pause before the processor or the view is
	// rebuilt after a failure; 0 means their default.
	RestartBackoff time.Duration
	// Web configures the HTTP server; its Logger is the service's.
	Web web.Config
	// Collectors are further metrics to register, such as build info.
	Collectors []prometheus.Collector
	// ExtraPages are handlers mounted beside the API and the web page,
	// such as the bench's baseline route.
	ExtraPages []web.Page
	// KEKs wrap the customers' data keys. Nil turns erasure off: personal
	// data is written as it comes, in plaintext.
	KEKs *keys.KEKs
	// ServeMode is ModeReplica (the default: every instance replicates
	// the whole table) or ModePartitioned (each instance serves the
	// partitions its processor owns and forwards the rest to their
	// owners; Web.AdvertisedURL is how they reach it).
	ServeMode string
	// MembershipRefresh is how often a partitioned instance reads the
	// group's members from Kafka; 0 means a second.
	MembershipRefresh time.Duration
	// StandbyReplicas is, in partitioned mode, how many other instances
	// keep a warm copy of each partition (under DataDir/standby/<group>),
	// to serve its reads while its owner cannot; 0 keeps none. At most
	// cluster.MaxStandbyReplicas, and useful up to the instances less one.
	StandbyReplicas int
	// Membership is how the processor joins its consumer group: an
	// instance id makes it a static member, whose clean restart costs no
	// rebalance (README: Static membership).
	Membership kafka.Membership
	Logger     *slog.Logger
}

// Serve modes.
const (
	ModeReplica     = "replica"
	ModePartitioned = "partitioned"
)

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("failed to validate kafka config: %w", err)
	}
	if err := c.Topics.Validate(); err != nil {
		return fmt.Errorf("failed to validate topics: %w", err)
	}
	if c.StorageBuffer < 0 || c.StorageBuffer > MaxStorageBuffer {
		return fmt.Errorf("storage buffer of %d bytes must be from 0 (the default) to %d", c.StorageBuffer, MaxStorageBuffer)
	}
	if err := c.Web.Validate(); err != nil {
		return fmt.Errorf("failed to validate web config: %w", err)
	}
	if c.ServeMode != "" && c.ServeMode != ModeReplica && c.ServeMode != ModePartitioned {
		return fmt.Errorf("serve mode %q must be %s or %s", c.ServeMode, ModeReplica, ModePartitioned)
	}
	if c.StandbyReplicas < 0 || c.StandbyReplicas > cluster.MaxStandbyReplicas {
		return fmt.Errorf("standby replicas %d must be from 0 to %d", c.StandbyReplicas, cluster.MaxStandbyReplicas)
	}
	if c.StandbyReplicas > 0 && c.ServeMode != ModePartitioned {
		return fmt.Errorf("standby replicas need serve mode %s: a replica holds the whole table already", ModePartitioned)
	}
	if err := c.Membership.Validate(c.Kafka.Version); err != nil {
		return fmt.Errorf("failed to validate group membership: %w", err)
	}
	return nil
}

// Service is eventfold, assembled and not yet running.
type Service struct {
	Processor *processor.Processor
	View      *views.View
	Server    *web.Server
	// Registry holds every metric the service exports at /metrics.
	Registry *prometheus.Registry
	// Partitions is the partition count of the events topic.
	Partitions int32
	// Keyring holds the data keys; nil when erasure is off.
	Keyring *keys.Keyring
	// DeadLetters reads the dead-letter topic for the web page: one
	// Kafka client for every request, closed by Close.
	DeadLetters *kafka.OffsetReader

	// Members is who owns which partition, in partitioned mode; nil in
	// replica mode.
	Members *cluster.Members
	// Tail follows the whole table for GET /watch in partitioned mode,
	// while someone watches; nil in replica mode, whose view has it all.
	Tail *views.Tail

	log     *slog.Logger
	closers []func() error
}

// New sets up the topics (creating them, or checking the existing ones),
// builds every part and binds the HTTP listen address. Close releases
// what it opened when Run is never called.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failed to validate service config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	partitions, err := kafka.Setup(ctx, cfg.Kafka, cfg.Topics)
	if err != nil {
		return nil, fmt.Errorf("failed to set up topics: %w", err)
	}
	topics := cfg.Topics
	log.Info("topics ready", "events", topics.Events, "table", topics.Table(), "dlq", topics.DeadLetter(), "partitions", partitions)

	s := &Service{Registry: prometheus.NewRegistry(), Partitions: partitions, log: log}
	if cfg.KEKs != nil {
		if s.Keyring, err = StartKeyring(ctx, cfg.Kafka, topics, cfg.KEKs, log); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.Keyring.Close)
	}
	if err := s.build(cfg, partitions); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Service) build(cfg Config, partitions int32) error {
	topics, reg := cfg.Topics, s.Registry
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cfg.Collectors...)
	var procDir, viewDir string
	if cfg.DataDir != "" {
		procDir, viewDir = filepath.Join(cfg.DataDir, "processor", topics.Group), filepath.Join(cfg.DataDir, "view", topics.Group)
	}
	if cfg.ProcessorInMemory {
		procDir = ""
	}
	var err error
	procCfg := processor.Config{Kafka: cfg.Kafka, Topics: topics, Partitions: partitions, Logger: s.log,
		RestartBackoff: cfg.RestartBackoff, StorageDir: procDir, StorageBuffer: cfg.StorageBuffer, Membership: cfg.Membership}
	if id := cfg.Membership.InstanceID; id != "" {
		s.log.Info("static group membership: a restart within the session timeout keeps this instance's partitions", "instance_id", id, "session_timeout", cfg.Membership.Timeout())
	}
	partitioned := cfg.ServeMode == ModePartitioned
	var router web.Router
	if partitioned {
		s.Members, err = cluster.New(cluster.Config{Kafka: cfg.Kafka, Group: topics.Group, Topic: topics.Events,
			Partitions: partitions, Refresh: cfg.MembershipRefresh, StandbyReplicas: cfg.StandbyReplicas, Logger: s.log})
		if err != nil {
			return err
		}
		s.closers = append(s.closers, s.Members.Close)
		// The processor reads MemberData when it joins the group, after
		// Listen has bound the address it advertises.
		procCfg.MemberData, procCfg.Rebalanced, router = s.Members.MemberData, s.Members.Poke, s.Members
	}
	var personal web.Personal
	var openState func(*processor.Customer) *processor.Customer
	if s.Keyring != nil {
		// Set only when there is a keyring: a nil *Keyring in an
		// interface would not read as nil.
		procCfg.Keyring, personal, openState = s.Keyring, s.Keyring, s.Keyring.OpenCustomer
	}
	var standby *views.StandbyConfig
	if partitioned && cfg.StandbyReplicas > 0 {
		standby = &views.StandbyConfig{Kafka: cfg.Kafka, Table: topics.Table(), Buffer: cfg.StorageBuffer,
			Partitions: s.Members.StandbyPartitions, Owned: s.Members.OwnedPartitions, Refresh: cfg.MembershipRefresh, Backoff: cfg.RestartBackoff, Logger: s.log}
		if cfg.DataDir != "" {
			standby.Dir = filepath.Join(cfg.DataDir, "standby", topics.Group)
		}
	}
	// A partitioned view reads the processor's storage, and is ready
	// when the processor is: built first, it wraps the processor's
	// storage builder. A replica shares the processor's acknowledged
	// copy of the partitions it owns, and copies the whole table only
	// when it does not own them all.
	s.View, err = views.New(views.Config{Kafka: cfg.Kafka, Topics: topics, StorageDir: viewDir, StorageBuffer: cfg.StorageBuffer,
		RestartBackoff: cfg.RestartBackoff, OpenState: openState, Logger: s.log, Standby: standby,
		Partitioned: partitioned, Shared: !partitioned, Partitions: partitions, Ready: func() bool { return s.Processor.Ready() }}, reg)
	if err != nil {
		return err
	}
	procCfg.WrapStorage, procCfg.WrapAcknowledged = s.View.StorageBuilder, s.View.AcknowledgedBuilder
	s.Processor, err = processor.New(procCfg, reg)
	if err != nil {
		return err
	}
	offsets, err := kafka.NewOffsets(cfg.Kafka)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, offsets.Close)
	reg.MustRegister(kafka.LagCollectors(offsets, topics, s.View.Positions)...)
	publisher, err := kafka.NewPublisher(cfg.Kafka, topics.Events, processor.NewMurmur2Hasher)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, publisher.Close)
	reader, err := kafka.NewOffsetReader(cfg.Kafka, topics.Events)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, reader.Close)
	if s.DeadLetters, err = kafka.NewDeadLetterReader(cfg.Kafka, topics.DeadLetter()); err != nil {
		return err
	}
	s.closers = append(s.closers, s.DeadLetters.Close)

	webCfg := cfg.Web
	webCfg.Logger = s.log
	checks := []web.Check{{Name: "view_recovered", Ready: s.View.Recovered}, {Name: "processor_running", Ready: s.Processor.Ready}}
	if partitioned {
		// The processor's store serves lookups: there is no view to
		// recover.
		checks = checks[1:]
	}
	pages, err := ui.Pages(ui.Config{DeadLetters: s.DeadLetters, Topics: topics, Processor: s.Processor, View: s.View,
		Replayer: publisher, Registerer: reg, Logger: s.log})
	if err != nil {
		return err
	}
	var copies web.Copies
	if standby != nil {
		copies = s.View
	}
	var changes web.ChangeFeed
	if partitioned {
		// The processor folds only this instance's partitions: GET
		// /watch follows the table topic, which every owner writes.
		s.Tail = views.NewTail(views.TailConfig{Kafka: cfg.Kafka, Table: topics.Table(), Partitions: partitions,
			OpenState: openState, Logger: s.log})
		changes = s.Tail
	}
	lag := &lagReader{offsets: newOffsetCache(offsets, lagOffsetsTTL), topics: topics, partitions: partitions, partitioned: partitioned, processor: s.Processor, view: s.View}
	s.Server, err = web.New(webCfg, web.Deps{Copies: copies, Lookups: s.View, Publisher: publisher, History: views.NewHistory(reader, partitions),
		Subscriber: s.View.Hub(), Changes: changes, Checks: checks, Pages: append(pages, cfg.ExtraPages...), Personal: personal, Router: router, Lag: lag,
		Cluster: &clusterStatus{mode: cmp.Or(cfg.ServeMode, ModeReplica), lag: lag, view: s.View, members: s.Members}}, reg, reg)
	if err != nil {
		return err
	}
	if _, err := s.Server.Listen(); err != nil {
		return err
	}
	if s.Members != nil {
		s.Members.SetSelf(s.Server.AdvertisedURL())
		s.log.Info("partitioned serving: advertising this instance to the group", "url", s.Server.AdvertisedURL())
	}
	return nil
}

// StartKeyring connects the keyring of the keys topic and reads it to its
// end; it fails when the KEKs do not unwrap its keys.
func StartKeyring(ctx context.Context, kc kafka.Config, topics kafka.Topics, keks *keys.KEKs, log *slog.Logger) (*keys.Keyring, error) {
	kr, err := keys.New(keys.Config{Kafka: kc, Topic: topics.Keys(), KEKs: keks, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := kr.Start(ctx); err != nil {
		kr.Close()
		return nil, fmt.Errorf("failed to start keyring: %w", err)
	}
	log.Info("keyring ready", "topic", topics.Keys(), "keks", keks.IDs())
	return kr, nil
}

// Addr is the HTTP server's bound address.
func (s *Service) Addr() net.Addr {
	addr, _ := s.Server.Listen() // bound by New: returns the listener's address
	return addr
}

// Run runs the processor, the view and the HTTP server until ctx is
// cancelled or one of them fails, then stops them all and releases the
// Kafka clients. It returns nil after a cancel.
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Processor.Run(gctx) })
	g.Go(func() error { return s.View.Run(gctx) })
	g.Go(func() error { return s.Server.Run(gctx) })
	if s.Members != nil {
		g.Go(func() error { return s.Members.Run(gctx) })
	}
	if s.Tail != nil {
		g.Go(func() error { return s.Tail.Run(gctx) })
	}
	return g.Wait()
}

// Close releases the Kafka clients of the history reader, the
// dead-letter reader, the publisher and the lag metrics. Run calls it on its way out.
func (s *Service) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}
