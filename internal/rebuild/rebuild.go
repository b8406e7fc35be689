// Package rebuild folds the whole events topic, from its first offset,
// into the table of a new group: after the fold changed, the old table is
// left alone and `serve --group <new>` switches to the new one.
//
// Every number it reports comes from Kafka. The group's position is its
// committed offsets; the target is the partitions' high-water marks. goka
// marks an event's offset only after every write of its callback (table
// value, dead letter) was acknowledged with acks=all, and sarama commits
// marked offsets once a second (Consumer.Offsets.AutoCommit.Interval). So
// the committed position trails the fold by about a second, but the table
// never trails the committed position: once it reaches the target, the
// table holds the fold of every event below it.
package rebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

const (
	// pollEvery bounds how often the offsets are read between progress
	// lines: each read is one ListOffsets per partition and one
	// OffsetFetch.
	pollEvery = 500 * time.Millisecond
	// settleWait bounds the wait, once the high-water marks of the start
	// are reached, for the events that arrived since (see settled). serve
	// folds the rest when it starts.
	settleWait = 10 * time.Second
	// stopTimeout bounds the processor's shutdown; goka itself waits up to
	// 60 s for the callbacks in flight.
	stopTimeout = 90 * time.Second
	// leaderWait bounds one reading of the offsets, which waits for the
	// leader of a partition of a topic created a moment ago.
	leaderWait = 15 * time.Second
)

// ErrRefused marks a rebuild that must not start: the events topic does
// not exist, or the group has folded before. Its message says what to
// change.
var ErrRefused = errors.New("rebuild refused")

// Config configures a rebuild.
type Config struct {
	Kafka  kafka.Config
	Topics kafka.Topics
	// DataDir holds the processor's scratch copy of the table, under
	// processor/<group>.
	DataDir string
	// Keyring, when set, starts the keyring of the keys topic once the
	// topics are set up, for the processor to authenticate sealed values
	// and erase keys as serve does; it returns the keyring and its Close.
	Keyring func(ctx context.Context) (processor.Keyring, func() error, error)
	// Interval is how often progress is logged.
	Interval time.Duration
	// Timeout gives up when the group has not caught up within it; 0
	// waits as long as it takes.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("progress interval %s must be positive", c.Interval)
	case c.Timeout < 0:
		return fmt.Errorf("timeout %s must not be negative", c.Timeout)
	case c.Topics.Events == "" || c.Topics.Group == "":
		return errors.New("no events topic or group")
	}
	return nil
}

// Run folds the events topic into the new group's table until the group
// has caught up, reports progress to the log and the outcome to stdout.
func Run(ctx context.Context, cfg Config, stdout io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("failed to validate rebuild config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kc := cfg.Kafka
	kc.ClientID += "-rebuild"
	offsets, err := kafka.NewOffsets(kc)
	if err != nil {
		return err
	}
	defer offsets.Close()
	p, err := newProbe(ctx, offsets, cfg.Topics)
	if err != nil {
		return err
	}
	if err := p.checkNewGroup(ctx); err != nil {
		return err
	}
	// The table must have as many partitions as the events topic, whatever
	// --partitions says.
	topics := cfg.Topics
	topics.Partitions = p.partitions
	partitions, err := kafka.Setup(ctx, cfg.Kafka, topics)
	if err != nil {
		return fmt.Errorf("failed to set up topics: %w", err)
	}
	// Setup returns as soon as Kafka accepted the new table topic; goka
	// fails to start on a partition that has no leader yet.
	if _, err := p.offsets(ctx, topics.Table(), sarama.OffsetNewest); err != nil {
		return err
	}
	first, err := p.measure(ctx)
	if err != nil {
		return err
	}
	deadLetters, err := p.kafka.Written(ctx, topics.DeadLetter())
	if err != nil {
		return err
	}
	r := newRun(cfg.Logger, p, topics, cfg.Interval, first,
		// Committed offsets move in steps of the commit interval: a rate
		// over fewer than a few of them swings between 0 and twice the
		// real one.
		max(cfg.Interval, 5*kc.Sarama().Consumer.Offsets.AutoCommit.Interval))
	r.deadLetters = deadLetters
	r.report(first, "rebuild starting")
	if r.total(first.end) == 0 {
		fmt.Fprintf(stdout, "events topic %s is empty: nothing to fold; group %s starts from its beginning\n", topics.Events, topics.Group)
		return nil
	}

	procCfg := processor.Config{Kafka: cfg.Kafka, Topics: topics, Partitions: partitions, Logger: cfg.Logger,
		StorageDir: filepath.Join(cfg.DataDir, "processor", topics.Group)}
	if cfg.Keyring != nil {
		kr, closeKeyring, err := cfg.Keyring(ctx)
		if err != nil {
			return err
		}
		defer closeKeyring()
		procCfg.Keyring = kr
	}
	// The processor's registry is thrown away: the progress comes from
	// Kafka, not from counters of this process.
	proc, err := processor.New(procCfg, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	procCtx, stopProc := context.WithCancel(ctx)
	defer stopProc()
	var procErr error
	procDone := make(chan struct{})
	go func() {
		procErr = proc.Run(procCtx)
		close(procDone)
	}()

	followCtx, cancelFollow := ctx, context.CancelFunc(func() {})
	if cfg.Timeout > 0 {
		followCtx, cancelFollow = context.WithTimeout(ctx, cfg.Timeout)
	}
	last, followErr := r.follow(followCtx, procDone)
	cancelFollow()

	stopProc()
	if err := awaitStop(procDone); err != nil {
		return err
	}
	if procErr != nil {
		return fmt.Errorf("failed to stop the processor: %w", procErr)
	}
	// The reading after the stop must not be cut short by an interrupt
	// that ended the follow.
	final, err := p.measure(context.WithoutCancel(ctx))
	if err != nil {
		cfg.Logger.Warn("failed to read the offsets after the processor stopped; reporting the last reading", "error", err)
		final = last
	}
	if followErr != nil {
		return r.failure(ctx, final, followErr, cfg.Timeout)
	}
	return r.summarize(context.WithoutCancel(ctx), stdout, last, final)
}

// awaitStop waits for the processor to stop. goka closes its producer on
// the way out, which flushes what is still buffered; the table writes
// below the committed offsets were acknowledged before they were marked.
func awaitStop(procDone <-chan struct{}) error {
	select {
	case <-procDone:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("processor did not stop within %s; the table may lack the last writes", stopTimeout)
	}
}
