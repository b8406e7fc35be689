package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// Sample is the process at one moment of the measured load.
type Sample struct {
	Seconds    float64 `json:"seconds"` // since the measured load started
	Goroutines int     `json:"goroutines"`
	// HeapInuseBytes is the Go heap in spans holding objects; LiveHeap
	// is what the last GC found reachable, the figure a leak moves.
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
	LiveHeapBytes  uint64 `json:"live_heap_bytes"`
	RSSBytes       int64  `json:"rss_bytes"`
	BrokerRSSBytes int64  `json:"broker_rss_bytes,omitempty"`
	Produced       int64  `json:"produced"`
	Requests       int64  `json:"requests"`
}

// Snapshot is the process at rest: the load stopped, its goroutines ended,
// a GC forced and freed memory returned to the OS.
type Snapshot struct {
	Goroutines     int    `json:"goroutines"`
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	RSSBytes       int64  `json:"rss_bytes"`
	BrokerRSSBytes int64  `json:"broker_rss_bytes,omitempty"`
	// SettleSeconds is how long the goroutines took to stop changing.
	SettleSeconds float64 `json:"settle_seconds"`
	// Stacks counts the goroutines by stack, for a diff when they grew.
	Stacks map[string]int `json:"-"`
}

// settle waits until the goroutine count has not changed for a second
// (or timeout passed), then takes a snapshot.
func settle(ctx context.Context, timeout time.Duration, brokerPID int) Snapshot {
	start := time.Now()
	deadline := start.Add(timeout)
	last, since := runtime.NumGoroutine(), time.Now()
	for time.Now().Before(deadline) && time.Since(since) < time.Second && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if n := runtime.NumGoroutine(); n != last {
			last, since = n, time.Now()
		}
	}
	settled := time.Since(start)
	runtime.GC()
	debug.FreeOSMemory() // another GC, and the freed pages go back: RSS then means something
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Snapshot{Goroutines: runtime.NumGoroutine(), HeapInuseBytes: ms.HeapInuse, HeapAllocBytes: ms.HeapAlloc,
		RSSBytes: rss(os.Getpid()), BrokerRSSBytes: rss(brokerPID), SettleSeconds: settled.Seconds(), Stacks: stacks()}
}

// sampler takes a sample every interval until ctx ends.
func sampler(ctx context.Context, every time.Duration, brokerPID int, t *tally, progress func(Sample)) []Sample {
	start := time.Now()
	read := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var out []Sample
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return out
		case <-ticker.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		metrics.Read(read)
		s := Sample{Seconds: time.Since(start).Seconds(), Goroutines: runtime.NumGoroutine(), HeapInuseBytes: ms.HeapInuse,
			LiveHeapBytes: read[0].Value.Uint64(), RSSBytes: rss(os.Getpid()), BrokerRSSBytes: rss(brokerPID),
			Produced: t.produced.Load(), Requests: t.requests.Load()}
		out = append(out, s)
		if progress != nil {
			progress(s)
		}
	}
}

// rss reads a process's resident set from /proc; 0 where there is none.
func rss(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// stacks counts the goroutines by the function each was created by and
// where it waits, from pprof's goroutine profile.
func stacks() map[string]int {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return nil
	}
	out := map[string]int{}
	// Records are "<n> @ <pcs>\n#\t<frame>\n...\n\n".
	for _, rec := range strings.Split(buf.String(), "\n\n") {
		lines := strings.Split(strings.TrimSpace(rec), "\n")
		if len(lines) < 2 {
			continue
		}
		n, err := strconv.Atoi(strings.Fields(lines[0])[0])
		if err != nil {
			continue
		}
		var frames []string
		for _, l := range lines[1:] {
			if f := strings.Fields(strings.TrimPrefix(l, "#")); len(f) >= 2 {
				frames = append(frames, f[1])
			}
		}
		key := strings.Join(frames[:min(len(frames), 4)], " < ")
		if len(frames) > 0 {
			key += " ... created by " + frames[len(frames)-1]
		}
		out[key] += n
	}
	return out
}

// StackGrowth lists the stacks that hold more goroutines in b than in a.
func StackGrowth(a, b map[string]int) []string {
	var out []string
	for k, n := range b {
		if n > a[k] {
			out = append(out, fmt.Sprintf("+%d %s", n-a[k], k))
		}
	}
	return out
}
