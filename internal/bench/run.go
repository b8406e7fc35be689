package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
)

// Run measures the configured scenarios and returns the report. It fails
// only when the bench itself breaks; a missed target is a verdict in the
// report. Every resource it makes is gone when it returns: the embedded
// broker, the temp dirs and, on an external broker, the run's topics
// (unless KeepTopics).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failed to validate bench config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Progress == nil {
		cfg.Progress = cfg.Logger
	}
	progress := func(msg string, args ...any) { cfg.Progress.Info(msg, args...) }
	started := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mem := newSampler()
	go mem.run(ctx)

	cl, err := openCluster(cfg, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	id := runID()
	topics := kafka.Topics{Events: "bench-" + id + "-events", Group: "bench-" + id, Partitions: int32(cfg.Partitions), Replication: 1}
	r := &Report{
		Started: started, Machine: machine(),
		Broker: BrokerInfo{Kind: cl.kind, Label: cl.label, Brokers: cl.kc.Brokers},
		Setup: Setup{Events: cfg.Events, Customers: cfg.Customers, Partitions: cfg.Partitions, Clients: cfg.Clients, Writers: cfg.Writers,
			DurationSeconds: cfg.Duration.Seconds(), Scenarios: cfg.Scenarios, Seed: cfg.Seed, EventsTopic: topics.Events, Group: topics.Group,
			ProcessorStorage: cfg.ProcessorStorage, Erasure: cfg.Erasure},
	}
	progress("setting up topics", "broker", cl.label, "events_topic", topics.Events, "group", topics.Group)
	if _, err := kafka.Setup(ctx, cl.kc, topics); err != nil {
		return nil, fmt.Errorf("failed to set up topics: %w", err)
	}
	rounds := &foldRounds{cfg: cfg, cl: cl, base: topics, progress: progress}
	if cl.kind == BrokerExternal && !cfg.KeepTopics {
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			all := append([]string{topics.Events, topics.Table(), topics.DeadLetter(), topics.Keys(), topics.Events + ".bench-publish"}, rounds.topics...)
			if err := cl.deleteTopics(ctx, all...); err != nil {
				cfg.Progress.Warn("failed to delete the run's topics", "error", err)
			}
		}()
	}
	if cfg.Erasure {
		if cfg.keks, err = runKEKs(); err != nil {
			return nil, err
		}
	}
	fixed := &fixedRoute{}
	svc, err := newService(ctx, cl.kc, topics, cl.tmp, cfg.ProcessorStorage, cfg.StorageBuffer, cfg.keks, fixed, cfg.Logger)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = svc.stop() // the run failed already; its error is the one to report
		}
	}()

	var cmp *comparison
	if cfg.KStreams && cl.kind == BrokerEmbedded {
		// Kafka Streams' admin client fails on kfake's DescribeConfigs and
		// DescribeTopicPartitions answers and never creates its changelog.
		r.KStreamsSkipped = "Kafka Streams needs a real Apache Kafka broker (--brokers); it does not run on the embedded kfake"
		cfg.Progress.Warn("skipping the Kafka Streams baseline", "reason", r.KStreamsSkipped)
	} else if cfg.KStreams {
		if cmp, err = newComparison(ctx, cfg, cl, topics, progress); err != nil {
			return nil, err
		}
		defer cmp.close()
		r.KStreams = cmp.r
	}
	if err := r.measure(ctx, cfg, cl, svc, fixed, mem, progress, cmp, rounds); err != nil {
		return nil, err
	}
	stopped = true
	if err := svc.stop(); err != nil {
		return nil, fmt.Errorf("the service failed during the run: %w", err)
	}
	var serve *ServeRestart
	if (cfg.runs(ScenarioRecover) || cmp != nil) && cfg.ServeBinary != "" {
		progress("restarting eventfold serve as a child process on an empty data dir")
		if serve, err = restartServe(ctx, cfg.ServeBinary, cl, svc, cfg.Customers); err != nil {
			return nil, err
		}
		if r.Recover != nil {
			r.Recover.Serve = serve
		}
	}
	var again *ServeRestart
	if serve != nil {
		progress("restarting eventfold serve on its data dir")
		if again, err = restartServe(ctx, cfg.ServeBinary, cl, svc, cfg.Customers); err != nil {
			return nil, err
		}
		if r.Recover != nil {
			r.Recover.ServeAgain = again
		}
	}
	if cmp != nil && serve != nil {
		r.KStreams.Restore.Eventfold = serveReady(serve)
		r.KStreams.Restart.Eventfold = serveReady(again)
		for _, p := range []*ReadyPair{&r.KStreams.Restore, &r.KStreams.Restart} {
			p.Ratio = p.Eventfold.KeysPerSec / p.KStreams.KeysPerSec
		}
	}
	r.Seconds = time.Since(started).Seconds()
	r.judge()
	return r, nil
}

// measure runs the scenarios on the in-process service: the fold always,
// since the others need its table, then the rest as configured.
func (r *Report) measure(ctx context.Context, cfg Config, cl *cluster, svc *service, fixed *fixedRoute, mem *sampler, progress func(string, ...any), cmp *comparison, rounds *foldRounds) error {
	end := mem.window()
	progress("generating events", "events", cfg.Events, "customers", cfg.Customers)
	events := GenerateEvents(cfg.Seed, cfg.Customers, cfg.Events)
	ids := events.Customers
	if cfg.Erasure {
		progress("sealing the events' personal data", "customers", cfg.Customers)
		sealStart := time.Now()
		var err error
		if events, err = svc.sealEvents(ctx, events); err != nil {
			return err
		}
		r.SealSeconds = time.Since(sealStart).Seconds()
	}
	fold, err := runFold(ctx, cl, svc, events, cfg.ProcessorStorage, cfg.FoldProfile, progress)
	if err != nil {
		return err
	}
	fold.Usage = end()
	if cfg.runs(ScenarioFold) {
		r.Fold = fold
	}
	rounds.events = events
	first := fold.Fold
	first.CPUSeconds = fold.FoldCPUSeconds
	if err := rounds.run(ctx, r, first, cmp); err != nil {
		return err
	}
	events, rounds.events = nil, nil // a million events are worth giving back before the next scenario
	runtime.GC()

	if cfg.runs(ScenarioRecover) {
		end := mem.window()
		if r.Recover, err = runRecover(ctx, cl, svc, cfg.RecoverProfile, progress); err != nil {
			return err
		}
		r.Recover.Usage = end()
	} else {
		if _, err := recoverView(ctx, svc.view(), 0, svc.startView); err != nil {
			return err
		}
	}
	if !cfg.runs(ScenarioLookup) && !cfg.runs(ScenarioWrite) && cmp == nil {
		return nil
	}
	svc.startHTTP()
	if cmp != nil {
		keys := int64(len(ids))
		if err := cmp.restore(ctx, keys, progress); err != nil {
			return err
		}
		if err := cmp.checkState(ctx, svc, ids, progress); err != nil {
			return err
		}
		if cfg.runs(ScenarioLookup) {
			cmp.lookup(ctx, svc, ids, progress)
		}
		if err := cmp.restart(ctx, keys, progress); err != nil {
			return err
		}
		if err := cmp.stopLive(); err != nil {
			return err
		}
	}
	if cfg.runs(ScenarioLookup) {
		progress("loading GET /customers/{id} and the fixed baseline", "clients", cfg.Clients, "duration", cfg.Duration)
		end := mem.window()
		stop, err := startProfile(cfg.LookupProfile)
		if err != nil {
			return err
		}
		r.Lookup, err = runLookup(ctx, svc, fixed, ids, cfg.Clients, cfg.Duration, cfg.Seed)
		stop()
		if err != nil {
			return err
		}
		r.Lookup.Usage = end()
	}
	if cfg.runs(ScenarioWrite) {
		progress("loading POST /customers/{id}/events and the publish baseline", "writers", cfg.Writers, "duration", cfg.Duration)
		end := mem.window()
		if r.Write, err = runWrite(ctx, cl, svc, ids, cfg.Writers, cfg.Duration, cfg.Seed); err != nil {
			return err
		}
		r.Write.Usage = end()
	}
	return nil
}

// runKEKs makes a KEK for one run, held in memory only: the run's keys
// topic is deleted with its other topics.
func runKEKs() (*keys.KEKs, error) {
	line, err := keys.NewKEKLine("bench")
	if err != nil {
		return nil, fmt.Errorf("failed to make the run's KEK: %w", err)
	}
	keks, err := keys.ParseKEKs([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("failed to read the run's KEK: %w", err)
	}
	return keks, nil
}
