package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	assembly "github.com/eventfold/eventfold/internal/service"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
	"github.com/eventfold/eventfold/web"
)

// service is eventfold in this process, assembled by internal/service as
// serve assembles it, with the bench's baseline route mounted beside the
// API. The bench starts its parts one by one, as the scenarios need them:
// the fold is measured with the processor alone.
type service struct {
	kc         kafka.Config
	topics     kafka.Topics
	partitions int32
	log        *slog.Logger
	app        *assembly.Service
	base       string // http://127.0.0.1:port

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// newService assembles the service on the run's topics, with its data
// under dir: the processor's copy in leveldb or in memory (storage), the
// view's in leveldb, as serve keeps them.
// keks turn erasure on, as serve's --kek-file does; nil runs it off.
func newService(ctx context.Context, kc kafka.Config, topics kafka.Topics, dir, storage string, buffer int, keks *keys.KEKs, fixed http.Handler, log *slog.Logger) (*service, error) {
	cfg := web.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	app, err := assembly.New(ctx, assembly.Config{Kafka: kc, Topics: topics, DataDir: dir, ProcessorInMemory: storage == StorageMemory, StorageBuffer: buffer, KEKs: keks,
		RestartBackoff: 200 * time.Millisecond, Web: cfg, Logger: log,
		ExtraPages: []web.Page{{Pattern: fixedPath, Handler: fixed, Access: web.Open}}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	return &service{kc: kc, topics: topics, partitions: app.Partitions, log: log, app: app,
		base: "http://" + app.Addr().String(), ctx: ctx, cancel: cancel}, nil
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

// startProcessor starts folding on the service's group.
func (s *service) startProcessor() { s.goRun("processor", s.app.Processor.Run) }

// proc is the service's processor.
func (s *service) proc() *processor.Processor { return s.app.Processor }

// view is the service's view, the one HTTP serves from.
func (s *service) view() *views.View { return s.app.View }

// newView builds another view of the table on storageDir (empty: in
// memory), with a registry of its own, to compare with the service's.
func (s *service) newView(storageDir string) (*views.View, error) {
	return views.New(views.Config{Kafka: s.kc, Topics: s.topics, StorageDir: storageDir, Logger: s.log, RestartBackoff: 200 * time.Millisecond}, prometheus.NewRegistry())
}

// startView runs the service's view.
func (s *service) startView() { s.goRun("view", s.app.View.Run) }

// startHTTP serves the API, the page and the baseline route.
func (s *service) startHTTP() { s.goRun("http", s.app.Server.Run) }

// stop shuts every part down and reports what failed while running.
func (s *service) stop() error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second): // goka waits up to 60 s for callbacks in flight
		return errors.New("the service did not stop within 90s")
	}
	if err := s.app.Close(); err != nil {
		s.errs = append(s.errs, fmt.Errorf("failed to close the service's clients: %w", err))
	}
	return errors.Join(s.errs...)
}

// counters sums the processor's decision counters.
func (s *service) counters() (decided, tableWrites float64, outcomes map[string]float64, err error) {
	// The lag gauges cannot be read before the view runs; the counters
	// are gathered regardless.
	families, err := s.app.Registry.Gather()
	if len(families) == 0 && err != nil {
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

// sealEvents seals the personal fields of the events with the service's
// keyring, as eventfold produce does with --erasure on, creating each
// customer's data key on its first event. Malformed events stay as they
// are: they are the run's dead letters either way.
func (s *service) sealEvents(ctx context.Context, events *Events) (*Events, error) {
	kr := s.app.Keyring
	return events.Map(ctx, 64, func(ctx context.Context, key string, value []byte) ([]byte, error) {
		sealed, err := kr.Seal(ctx, key, value)
		if errors.Is(err, processor.ErrMalformed) {
			return value, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to seal the event of %s: %w", key, err)
		}
		return sealed, nil
	})
}
