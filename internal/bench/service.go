package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
	"github.com/eventfold/eventfold/web"
)

// service is eventfold in this process, wired as serve wires it, started
// part by part as the scenarios need them.
type service struct {
	kc         kafka.Config
	topics     kafka.Topics
	partitions int32
	log        *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error

	reg       *prometheus.Registry // the processor's and the server's metrics
	proc      *processor.Processor
	view      *views.View
	publisher *kafka.Publisher
	http      *http.Server
	base      string // http://127.0.0.1:port
}

func newService(ctx context.Context, kc kafka.Config, topics kafka.Topics, partitions int32, log *slog.Logger) *service {
	ctx, cancel := context.WithCancel(ctx)
	return &service{kc: kc, topics: topics, partitions: partitions, log: log, ctx: ctx, cancel: cancel, reg: prometheus.NewRegistry()}
}

// goRun runs a part until the service stops.
func (s *service) goRun(name string, run func(context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := run(s.ctx); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.mu.Unlock()
		}
	}()
}

// startProcessor starts folding on the service's group, keeping its
// table copy in storageDir (leveldb, as serve does) or, when empty, in
// memory.
func (s *service) startProcessor(storageDir string) error {
	proc, err := processor.New(processor.Config{Kafka: s.kc, Topics: s.topics, Partitions: s.partitions, Logger: s.log,
		RestartBackoff: 200 * time.Millisecond, StorageDir: storageDir}, s.reg)
	if err != nil {
		return err
	}
	s.proc = proc
	s.goRun("processor", proc.Run)
	return nil
}

// newView builds a view of the table on storageDir (empty: in memory),
// with a registry of its own so that several can exist.
func (s *service) newView(storageDir string) (*views.View, error) {
	return views.New(views.Config{Kafka: s.kc, Topics: s.topics, StorageDir: storageDir, Logger: s.log, RestartBackoff: 200 * time.Millisecond}, prometheus.NewRegistry())
}

// startView runs view as the service's view, the one HTTP serves from.
func (s *service) startView(view *views.View) {
	s.view = view
	s.goRun("view", view.Run)
}

// startHTTP serves the API on a loopback port, with extra routes of the
// bench beside it on the same http.Server.
func (s *service) startHTTP(extra map[string]http.Handler) error {
	publisher, err := kafka.NewPublisher(s.kc, s.topics.Events, processor.NewMurmur2Hasher)
	if err != nil {
		return err
	}
	s.publisher = publisher
	cfg := web.DefaultConfig()
	cfg.Addr, cfg.Logger = "127.0.0.1:0", s.log
	checks := []web.Check{{Name: "view_recovered", Ready: s.view.Recovered}, {Name: "processor_running", Ready: s.proc.Ready}}
	server, err := web.New(cfg, web.Deps{Lookups: s.view, Publisher: publisher, Subscriber: s.view.Hub(), Checks: checks}, s.reg, s.reg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	mux.Handle("/", server.Handler())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("failed to listen: %w", err)
	}
	// The settings of web.Server.Run; the bench needs its own server only
	// to mount its baseline route beside the API.
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		BaseContext: func(net.Listener) context.Context { return s.ctx }}
	s.base = "http://" + l.Addr().String()
	s.goRun("http", func(context.Context) error {
		if err := s.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// stop shuts every part down and reports what failed while running.
func (s *service) stop() error {
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.http.Shutdown(ctx) // open keep-alive connections are closed either way
		cancel()
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second): // goka waits up to 60 s for callbacks in flight
		return errors.New("the service did not stop within 90s")
	}
	if s.publisher != nil {
		if err := s.publisher.Close(); err != nil {
			s.errs = append(s.errs, fmt.Errorf("failed to close the publisher: %w", err))
		}
		s.publisher = nil
	}
	s.http = nil
	return errors.Join(s.errs...)
}

// counters sums the processor's decision counters.
func (s *service) counters() (decided, tableWrites float64, outcomes map[string]float64, err error) {
	families, err := s.reg.Gather()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("failed to gather metrics: %w", err)
	}
	outcomes = map[string]float64{}
	for _, mf := range families {
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		switch mf.GetName() {
		case "eventfold_events_folded_total":
			outcomes["accepted"] = sum
		case "eventfold_events_rejected_total":
			outcomes["rejected"] = sum
		case "eventfold_events_duplicate_total":
			outcomes["duplicate"] = sum
		case "eventfold_dlq_records_total":
			outcomes["dead_letter"] = sum
		case "eventfold_table_writes_total":
			tableWrites = sum
		}
	}
	return outcomes["accepted"] + outcomes["rejected"] + outcomes["duplicate"], tableWrites, outcomes, nil
}
