package bench

import (
	"context"
	"fmt"
	"io"
	"runtime/pprof"
	"time"
)

// FoldResult is the fold scenario: the processor against the producer
// and the bare consumers, on the same events.
type FoldResult struct {
	// ProcessorStorage is where the processor keeps its table copy:
	// leveldb, as serve does, or memory.
	ProcessorStorage string `json:"processor_storage"`
	Events           int    `json:"events"`
	Customers        int    `json:"customers"`
	EventBytes       int64  `json:"event_bytes"`
	// Producer is baseline 1: a kgo producer writing the events.
	Producer Throughput `json:"producer"`
	// BareConsumer is baseline 2: kgo reading them back, no group; the
	// median of three reads, two before the fold and one after.
	BareConsumer Throughput `json:"bare_consumer"`
	// SaramaConsumer reads them with sarama, the client under goka; the
	// median of three reads before the fold.
	SaramaConsumer Throughput `json:"sarama_consumer"`
	// Fold is the processor on a fresh group, from its first folded
	// record to its last table write acknowledged by Kafka.
	Fold Throughput `json:"fold"`
	// StartupSeconds is from processor.Run to the first folded record:
	// joining the group and recovering an empty table.
	StartupSeconds float64 `json:"startup_seconds"`
	// FoldCPUSeconds is the CPU time of the bench process over the fold:
	// the processor's, plus the embedded broker's when it is embedded.
	FoldCPUSeconds float64 `json:"fold_cpu_seconds"`
	// FoldMachineBusyCores is how many cores the whole machine kept busy
	// over the fold: with an external broker, its share shows here.
	FoldMachineBusyCores float64 `json:"fold_machine_busy_cores"`
	// Outcomes count the decisions: accepted, rejected, duplicate, and
	// dead_letter (a part of rejected).
	Outcomes    map[string]float64 `json:"outcomes"`
	TableWrites int64              `json:"table_writes"`
	// Ratio is Fold over BareConsumer.
	Ratio float64 `json:"ratio_vs_bare_consumer"`
	Usage Usage   `json:"usage"`
}

// foldPoll is how often the fold's progress is read until its first
// record is seen, and then at first: the time resolution of its start.
const foldPoll = 5 * time.Millisecond

// maxFoldPoll bounds the interval between reads of the fold's progress
// once it runs. eventfold's progress is read from its metrics registry,
// which also asks the broker for the lag of every partition and reads the
// process' files: read every 5 ms through a fold, that was 6.7% of the
// CPU the bench counted as the fold's (profile of 300,000 events,
// BENCHMARKS.md). Reading at a hundredth of the time the fold has run,
// at most this apart, keeps the end's resolution within a few tenths of a
// percent of the fold's duration.
const maxFoldPoll = 50 * time.Millisecond

// progressInterval is the interval between progress reads of a fold that
// has run for elapsed.
func progressInterval(elapsed time.Duration) time.Duration {
	return min(max(elapsed/100, foldPoll), maxFoldPoll)
}

// runFold produces the events, reads them back with bare consumers, then
// starts the service's processor on its fresh group and waits until it
// has folded every event and Kafka holds every table write.
func runFold(ctx context.Context, cl *cluster, svc *service, events *Events, storage string, profile io.Writer, progress func(string, ...any)) (*FoldResult, error) {
	r := &FoldResult{Events: events.Len(), Customers: len(events.Customers), EventBytes: int64(events.Bytes()), ProcessorStorage: storage}
	topic := svc.topics.Events
	progress("producing events", "events", events.Len(), "bytes", events.Bytes())
	var err error
	if r.Producer, err = produceEvents(ctx, cl.kc.Brokers, topic, events); err != nil {
		return nil, err
	}
	hwms, written, err := cl.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	if written != int64(events.Len()) {
		return nil, fmt.Errorf("events topic %s holds %d records after producing %d", topic, written, events.Len())
	}
	progress("reading events with bare kgo and sarama consumers")
	bare := &baseline{read: func() (Throughput, error) { return consumeKgo(ctx, cl.kc.Brokers, topic, hwms) }}
	sarama := &baseline{read: func() (Throughput, error) { return consumeSarama(ctx, cl.kc, topic, hwms) }}
	// The last kgo read comes after the fold, so that both sides of the
	// ratio see the machine of that minute.
	if err := bare.sample(baselineRuns - 1); err != nil {
		return nil, err
	}
	if err := sarama.sample(baselineRuns); err != nil {
		return nil, err
	}

	progress("folding events with the processor on a fresh group", "group", svc.topics.Group)
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return nil, fmt.Errorf("failed to start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	svc.startProcessor()
	first, last, cpu, busy, err := awaitFold(ctx, cl, svc, float64(events.Len()))
	if err != nil {
		return nil, err
	}
	r.FoldCPUSeconds = cpu.Seconds()
	r.FoldMachineBusyCores = busy.Seconds() / max(last.Sub(first).Seconds(), 1e-3)
	if profile != nil {
		pprof.StopCPUProfile()
	}
	_, writes, outcomes, err := svc.counters()
	if err != nil {
		return nil, err
	}
	r.Outcomes, r.TableWrites = outcomes, int64(writes)
	r.StartupSeconds = first.Sub(start).Seconds()
	r.Fold = throughput(int64(events.Len()), int64(events.Bytes()), last.Sub(first))
	if err := bare.sample(1); err != nil {
		return nil, err
	}
	r.BareConsumer, r.SaramaConsumer = bare.median(), sarama.median()
	for _, t := range []Throughput{r.BareConsumer, r.SaramaConsumer} {
		if t.Records != written {
			return nil, fmt.Errorf("%w: %d of %d", errIncomplete, t.Records, written)
		}
	}
	r.Ratio = r.Fold.PerSec / r.BareConsumer.PerSec
	return r, nil
}

// awaitFold polls the processor until every event is decided, then the
// table topic until it holds every table write. It returns when the
// first record was seen folded (or the processor became ready, if that
// was seen first) and when the last table write was seen in Kafka, and
// the CPU time of the process and of the machine in between.
func awaitFold(ctx context.Context, cl *cluster, svc *service, want float64) (first, last time.Time, cpu, busy time.Duration, err error) {
	progress := func() (float64, float64, error) {
		decided, writes, _, err := svc.counters()
		return decided, writes, err
	}
	return awaitProgress(ctx, cl, svc.topics.Table(), want, progress, svc.proc().Ready)
}

// awaitProgress polls a fold's progress (records decided, table writes
// issued) until want records are decided, then the table topic until it
// holds every write; awaitFold says what it returns.
func awaitProgress(ctx context.Context, cl *cluster, table string, want float64, progress func() (decided, writes float64, err error), ready func() bool) (first, last time.Time, cpu, busy time.Duration, err error) {
	t := time.NewTicker(foldPoll)
	defer t.Stop()
	var decided, writes float64
	var cpuAtFirst, busyAtFirst time.Duration
	var lastRead time.Time
	for decided < want {
		select {
		case <-ctx.Done():
			return first, last, 0, 0, fmt.Errorf("failed to fold %.0f events, %.0f decided: %w", want, decided, ctx.Err())
		case now := <-t.C:
			if !first.IsZero() && now.Sub(lastRead) < progressInterval(now.Sub(first)) {
				continue
			}
		}
		lastRead = time.Now()
		if decided, writes, err = progress(); err != nil {
			return first, last, 0, 0, err
		}
		if first.IsZero() && (decided > 0 || ready()) {
			first, cpuAtFirst, busyAtFirst = time.Now(), cpuTime(), machineBusy()
		}
	}
	for {
		_, inTable, err := cl.endOffsets(ctx, table)
		if err != nil {
			return first, last, 0, 0, err
		}
		if float64(inTable) >= writes {
			return first, time.Now(), cpuTime() - cpuAtFirst, machineBusy() - busyAtFirst, nil
		}
		select {
		case <-ctx.Done():
			return first, last, 0, 0, fmt.Errorf("failed to see %.0f table writes in Kafka, %d there: %w", writes, inTable, ctx.Err())
		case <-t.C:
		}
	}
}
