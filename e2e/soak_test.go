package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/soak"
	"github.com/eventfold/eventfold/processor"
)

var (
	soakDuration = flag.Duration("soak.duration", 0, "measured load of TestSoak (default 2m, or $EVENTFOLD_SOAK_DURATION)")
	soakReport   = flag.String("soak.report", "", "write TestSoak's report as JSON to this file")
	soakLevelDB  = flag.Bool("soak.leveldb", false, "keep TestSoak's table copies in leveldb, as serve does, instead of memory")
)

// Bounds of the soak, between the baseline (after the warm-up, at rest)
// and the end (after the measured load, at rest). The service's state is
// bounded by its customers (a few hundred here) and each one's history
// (MaxHistory offsets at a few bytes each), so its heap must come back
// to the baseline give or take what the runtime and clients cache. The
// runs so far ended within 3 goroutines of the baseline and under 3 MiB
// of heap above it (RELIABILITY.md, "Soak").
const (
	soakGoroutineSlack = 10
	soakHeapGrowth     = 16 << 20
	soakRSSGrowth      = 64 << 20
	// soakLevelDBBound is what leveldb may add once it runs, for the
	// processor and the view with 6 partitions each: a second 2 MiB
	// memtable and a full 2 MiB block cache per database.
	soakLevelDBBound = 12 * (2 + 2) << 20
)

func soakLength(t *testing.T) time.Duration {
	t.Helper()
	if *soakDuration > 0 {
		return *soakDuration
	}
	if v := os.Getenv("EVENTFOLD_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("EVENTFOLD_SOAK_DURATION=%q is not a positive duration", v)
		}
		return d
	}
	return 2 * time.Minute
}

// TestSoak runs eventfold in this process under a steady mixed load
// (internal/testing/soak) and checks that goroutines and memory come back to
// where they were, that nothing failed, and that the state is the fold of
// what was produced. The broker runs in a child process, so that its log,
// which grows with every event, is not counted as the service's memory.
//
// It is not parallel: the figures are the whole process's.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak of minutes; -short skips it")
	}
	d := soakLength(t)
	broker, pid := soakStartBroker(t)
	topics := kafka.Topics{Events: "customer-events", Group: "customers", Partitions: 6, Replication: 1}
	// In memory by default: leveldb's memtables and block caches fill up
	// to their bounds over minutes (soakLevelDBBound), which would drown a
	// leak in a short run's heap check. The other pipeline tests, the
	// binary tests and the crash campaign run on leveldb; -soak.leveldb
	// runs the soak on it too, allowing for that bound.
	storageDir, heapGrowth, rssGrowth := "", int64(soakHeapGrowth), int64(soakRSSGrowth)
	if *soakLevelDB {
		storageDir, heapGrowth, rssGrowth = t.TempDir(), heapGrowth+soakLevelDBBound, rssGrowth+soakLevelDBBound
	}
	p := startPipelineStored(t, broker, topics, storageDir)

	cfg := soak.DefaultConfig()
	cfg.BaseURL, cfg.Brokers, cfg.Topic, cfg.BrokerPID = p.client.Base, []string{broker}, topics.Events, pid
	cfg.Duration = d
	cfg.Warmup = min(max(d/6, 10*time.Second), 2*time.Minute)
	cfg.SampleEvery = min(max(d/60, 5*time.Second), 30*time.Second)
	cfg.Progress = func(s soak.Sample) {
		t.Logf("%6.0fs  goroutines %4d  heap in use %6.1f MiB  live %6.1f MiB  RSS %6.1f MiB  broker RSS %6.1f MiB  produced %7d  requests %7d",
			s.Seconds, s.Goroutines, soakMiB(s.HeapInuseBytes), soakMiB(s.LiveHeapBytes), soakMiB(s.RSSBytes), soakMiB(s.BrokerRSSBytes), s.Produced, s.Requests)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+cfg.Warmup+5*time.Minute)
	defer cancel()
	t.Logf("soak: %s measured after a %s warm-up; broker in child process %d", d, cfg.Warmup, pid)
	r, err := soak.Run(ctx, cfg)
	if r != nil {
		soakLog(t, r)
		if *soakReport != "" {
			soakWriteReport(t, *soakReport, r)
		}
	}
	if err != nil {
		t.Fatalf("soak failed: %v", err)
	}

	if r.Final.Goroutines > r.Baseline.Goroutines+soakGoroutineSlack {
		t.Errorf("goroutines %d at the end, %d at the baseline: more than +%d; grown stacks:\n%s", r.Final.Goroutines, r.Baseline.Goroutines,
			soakGoroutineSlack, strings.Join(soak.StackGrowth(r.Baseline.Stacks, r.Final.Stacks), "\n"))
	}
	if growth := int64(r.Final.HeapAllocBytes) - int64(r.Baseline.HeapAllocBytes); growth > heapGrowth {
		t.Errorf("heap grew by %.1f MiB (%.1f -> %.1f), more than %d MiB", soakMiB(growth), soakMiB(r.Baseline.HeapAllocBytes), soakMiB(r.Final.HeapAllocBytes), heapGrowth>>20)
	}
	if growth := r.Final.RSSBytes - r.Baseline.RSSBytes; growth > rssGrowth {
		t.Errorf("RSS grew by %.1f MiB (%.1f -> %.1f), more than %d MiB", soakMiB(growth), soakMiB(r.Baseline.RSSBytes), soakMiB(r.Final.RSSBytes), rssGrowth>>20)
	}
	if r.ErrorCount > 0 {
		t.Errorf("%d failed requests under load; the first:\n%s", r.ErrorCount, strings.Join(r.Errors, "\n"))
	}
	if r.WatchDisorder > 0 {
		t.Errorf("%d watch events out of version order", r.WatchDisorder)
	}
	if r.MeasuredRequests == 0 || r.WatchEvents == 0 || r.MeasuredProduced == 0 {
		t.Errorf("the load did nothing: %d requests, %d watch events, %d events produced", r.MeasuredRequests, r.WatchEvents, r.MeasuredProduced)
	}

	p.client.AwaitFold(t, r.Reference, 60*time.Second)
	soakCheckWritten(t, p, r.Written)
	if got := counterValue(t, p.reg, "eventfold_dlq_records_total", "reason", processor.ReasonMalformed); got != float64(r.Malformed) {
		t.Errorf("malformed dead letters = %v, want %d", got, r.Malformed)
	}
	for _, name := range []string{"eventfold_processor_restarts_total", "eventfold_view_restarts_total"} {
		if got := sumCounter(t, p.reg, name); got != 0 {
			t.Errorf("%s = %v, want 0", name, got)
		}
	}
	if served := sumCounter(t, p.reg, "eventfold_http_requests_total"); served < float64(r.Requests) {
		t.Errorf("the server counted %v requests, the clients got %d answers", served, r.Requests)
	}
}

// soakCheckWritten checks that each writer customer ended at a version
// its writer's answers allow.
func soakCheckWritten(t *testing.T, p *pipeline, written map[string]soak.Bounds) {
	t.Helper()
	for id, b := range written {
		var v int64
		switch status, c := p.client.Customer(t, id, ""); status {
		case http.StatusOK:
			v = c.Version
		case http.StatusNotFound:
		default:
			t.Errorf("%s: status %d", id, status)
			continue
		}
		if v < b.Min || v > b.Max {
			t.Errorf("%s ended at version %d; its writer got %d writes accepted and %d pending", id, v, b.Min, b.Max-b.Min)
		}
	}
}

func soakMiB[N int64 | uint64](n N) float64 { return float64(n) / (1 << 20) }

func soakLog(t *testing.T, r *soak.Report) {
	t.Helper()
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "load: %d events/s over %d customers, %d lookup clients at %d/s, %d writers of %d customers, %d watchers; %.0f s measured after %.0f s warm-up\n",
		c.EventsPerSecond, c.Customers, c.Lookups, c.LookupsPerSecond, c.Writers, c.WriterCustomers, c.Watchers, r.DurationSeconds, r.WarmupSeconds)
	fmt.Fprintf(&b, "%-22s %10s %12s %12s %10s %12s\n", "", "goroutines", "heap in use", "heap alloc", "RSS", "broker RSS")
	row := func(name string, s soak.Snapshot) {
		fmt.Fprintf(&b, "%-22s %10d %8.1f MiB %8.1f MiB %6.1f MiB %8.1f MiB\n", name, s.Goroutines, soakMiB(s.HeapInuseBytes), soakMiB(s.HeapAllocBytes), soakMiB(s.RSSBytes), soakMiB(s.BrokerRSSBytes))
	}
	row("baseline, at rest", r.Baseline)
	fmt.Fprintf(&b, "%-22s %10d %8.1f MiB %12s %6.1f MiB %8.1f MiB\n", "peak under load", r.Peak.Goroutines, soakMiB(r.Peak.HeapInuseBytes), "", soakMiB(r.Peak.RSSBytes), soakMiB(r.Peak.BrokerRSSBytes))
	row("end, at rest", r.Final)
	fmt.Fprintf(&b, "live heap slope under load: %+.1f MiB/h; goroutines settled in %.1f s\n", r.LiveHeapSlope/(1<<20), r.Final.SettleSeconds)
	fmt.Fprintf(&b, "produced %d events (%d in the measured load, %d malformed in all); %d answers (%d measured); %d watch streams, %d watch events; %d errors\n",
		r.Produced, r.MeasuredProduced, r.Malformed, r.Requests, r.MeasuredRequests, r.WatchConnections, r.WatchEvents, r.ErrorCount)
	keys := make([]string, 0, len(r.Statuses))
	for k := range r.Statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-45s %8d\n", k, r.Statuses[k])
	}
	t.Log("soak figures:\n" + b.String())
}

func soakWriteReport(t *testing.T, path string, r *soak.Report) {
	t.Helper()
	data, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		t.Errorf("failed to write the soak report: %v", err)
	}
}

// soakStartBroker runs the embedded broker in a child process: this test
// binary, running TestSoakBrokerProcess. It returns the broker's address
// and process id. The child ends when its stdin closes, so it dies with
// this process too.
func soakStartBroker(t *testing.T) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSoakBrokerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EVENTFOLD_SOAK_BROKER=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start the broker process: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("broker process %d did not stop within 10s of its stdin closing; killing it", cmd.Process.Pid)
			_ = cmd.Process.Kill() // our own child, by its handle
			<-done
		}
	})
	addr := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if a, ok := strings.CutPrefix(s.Text(), "soak-broker "); ok {
				addr <- a
				return // the child writes nothing more until it ends
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("the broker process ended without an address")
		}
		return a, cmd.Process.Pid
	case <-time.After(30 * time.Second):
		t.Fatal("the broker process gave no address within 30s")
	}
	return "", 0
}

// TestSoakBrokerProcess is TestSoak's broker, run by it in a child
// process; on its own it skips.
func TestSoakBrokerProcess(t *testing.T) {
	if os.Getenv("EVENTFOLD_SOAK_BROKER") != "1" {
		t.Skip("the broker process of TestSoak; TestSoak runs it")
	}
	b, err := embedded.Start(embedded.Config{Addr: "127.0.0.1:0", Partitions: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	fmt.Printf("soak-broker %s\n", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until TestSoak closes it, or dies
}
