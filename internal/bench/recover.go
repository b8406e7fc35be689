package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"

	"github.com/eventfold/eventfold/views"
)

// RecoverResult is the recover scenario: fresh views restoring the table,
// against a bare consumer of the table topic.
type RecoverResult struct {
	// TableRecords are the records in the table topic, Keys the entries
	// they fold to (one per customer).
	TableRecords int64 `json:"table_records"`
	Keys         int64 `json:"keys"`
	// BareConsumer is the baseline: kgo reading the table topic to its
	// end; the median of three reads: before each view and after both.
	BareConsumer Throughput `json:"bare_consumer"`
	// LevelDB is a view on an empty storage dir: the full copy of the
	// table a replica makes when its processor does not own every
	// partition; InMemory is the in-memory view.
	LevelDB  ViewRecovery `json:"leveldb_view"`
	InMemory ViewRecovery `json:"memory_view"`
	// Serve restarts `eventfold serve` as a child process; nil without a
	// binary.
	Serve *ServeRestart `json:"serve_restart,omitempty"`
	// ServeAgain is the same child stopped cleanly and started again on
	// its data dir: the processor and the view read only the table
	// records after their checkpoints. nil without a binary.
	ServeAgain *ServeRestart `json:"serve_restart_kept,omitempty"`
	// Ratio is the leveldb view's records/s over the bare consumer's.
	Ratio float64 `json:"ratio_vs_bare_consumer"`
	Usage Usage   `json:"usage"`
}

// ViewRecovery is one view's time to Recovered, the condition /readyz
// uses.
type ViewRecovery struct {
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_second"`
	KeysPerSec    float64 `json:"keys_per_second"`
	Keys          int64   `json:"keys"`
	// RetainedHeapBytes is the live Go heap the recovered view added,
	// measured after a collection before and after.
	RetainedHeapBytes int64 `json:"retained_heap_bytes"`
}

// recoverPoll is how often Recovered is asked: the time resolution.
const recoverPoll = 5 * time.Millisecond

// runRecover measures the baseline, then an in-memory view and a leveldb
// view (each stopped afterwards), then starts the service's view.
func runRecover(ctx context.Context, cl *cluster, svc *service, profile io.Writer, progress func(string, ...any)) (*RecoverResult, error) {
	r := &RecoverResult{}
	hwms, records, err := cl.endOffsets(ctx, svc.topics.Table())
	if err != nil {
		return nil, err
	}
	r.TableRecords = records
	progress("reading the table topic with a bare kgo consumer", "records", records)
	// One read before each view and one after both: the median sees the
	// machine of the whole scenario.
	bare := &baseline{read: func() (Throughput, error) { return consumeKgo(ctx, cl.kc.Brokers, svc.topics.Table(), hwms) }}
	if err := bare.sample(1); err != nil {
		return nil, err
	}

	progress("recovering a fresh in-memory view")
	if r.InMemory, err = recoverFresh(ctx, svc, "", records, nil); err != nil {
		return nil, err
	}
	if err := bare.sample(1); err != nil {
		return nil, err
	}
	// The service's own view shares the processor's copy when the
	// processor owns every partition, as here, and has nothing to
	// recover; a fresh view on an empty dir is the full copy a replica
	// makes when it shares the group with other instances.
	progress("recovering a fresh leveldb view")
	dir, err := os.MkdirTemp(cl.tmp, "view-")
	if err != nil {
		return nil, fmt.Errorf("failed to make the view's dir: %w", err)
	}
	if r.LevelDB, err = recoverFresh(ctx, svc, dir, records, profile); err != nil {
		return nil, err
	}
	if _, err := recoverView(ctx, svc.view(), 0, svc.startView); err != nil {
		return nil, err
	}
	if err := bare.sample(1); err != nil {
		return nil, err
	}
	r.BareConsumer = bare.median()
	r.Keys = r.LevelDB.Keys
	r.Ratio = r.LevelDB.RecordsPerSec / r.BareConsumer.PerSec
	return r, nil
}

// recoverFresh times a fresh view on storageDir (in memory when empty) to
// Recovered, under a CPU profile into profile if any, and stops it.
func recoverFresh(ctx context.Context, svc *service, storageDir string, records int64, profile io.Writer) (ViewRecovery, error) {
	v, err := svc.newView(storageDir)
	if err != nil {
		return ViewRecovery{}, err
	}
	vctx, stopView := context.WithCancel(ctx)
	done := make(chan error, 1)
	stopProfile, err := startProfile(profile)
	if err != nil {
		stopView()
		return ViewRecovery{}, err
	}
	r, err := recoverView(vctx, v, records, func() { go func() { done <- v.Run(vctx) }() })
	stopProfile()
	stopView()
	if err != nil {
		return ViewRecovery{}, err
	}
	if err := <-done; err != nil {
		return ViewRecovery{}, fmt.Errorf("failed to stop the fresh view: %w", err)
	}
	return r, nil
}

// recoverView starts a view with start and times it to Recovered.
func recoverView(ctx context.Context, view *views.View, records int64, start func()) (ViewRecovery, error) {
	before := liveHeap()
	began := time.Now()
	start()
	t := time.NewTicker(recoverPoll)
	defer t.Stop()
	for !view.Recovered() {
		select {
		case <-ctx.Done():
			return ViewRecovery{}, fmt.Errorf("failed to recover the view, %d keys so far: %w", view.Keys(), ctx.Err())
		case <-t.C:
		}
	}
	elapsed := max(time.Since(began), time.Millisecond)
	keys := view.Keys()
	return ViewRecovery{
		Seconds:           elapsed.Seconds(),
		RecordsPerSec:     float64(records) / elapsed.Seconds(),
		KeysPerSec:        float64(keys) / elapsed.Seconds(),
		Keys:              keys,
		RetainedHeapBytes: max(0, liveHeap()-before),
	}, nil
}

// startProfile starts a CPU profile into w, if any, and returns the
// function that stops it.
func startProfile(w io.Writer) (stop func(), err error) {
	if w == nil {
		return func() {}, nil
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		return nil, fmt.Errorf("failed to start the CPU profile: %w", err)
	}
	return pprof.StopCPUProfile, nil
}

// liveHeap returns the bytes of live heap objects after a collection.
func liveHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}
