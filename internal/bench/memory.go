package bench

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Usage is what one scenario cost the bench process: memory sampled
// every 50 ms, and CPU time.
type Usage struct {
	// PeakRSSBytes is the highest resident set of the bench process seen
	// during the scenario. It includes the embedded broker when there is
	// one, and the bench's own clients and data.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// PeakHeapInuseBytes is the highest Go heap in use (spans holding
	// objects), the share of RSS that the Go code controls.
	PeakHeapInuseBytes int64 `json:"peak_heap_inuse_bytes"`
	// PeakHeapAllocBytes is the highest Go heap of allocated objects,
	// live or not yet collected.
	PeakHeapAllocBytes int64 `json:"peak_heap_alloc_bytes"`
	// CPUSeconds is the process's user and system time over
	// WallSeconds; their ratio is the cores it kept busy.
	CPUSeconds  float64 `json:"cpu_seconds"`
	WallSeconds float64 `json:"wall_seconds"`
	// MachineBusyCores is how many cores the whole machine kept busy
	// meanwhile: this process, an external broker and any neighbour.
	MachineBusyCores float64 `json:"machine_busy_cores"`
}

// sampler records the memory of this process; Window marks a scenario.
type sampler struct {
	mu   sync.Mutex
	peak Usage
	rss  func() int64
	read []metrics.Sample
}

const samplePeriod = 50 * time.Millisecond

func newSampler() *sampler {
	return &sampler{
		rss: func() int64 { return procStatus("/proc/self/status", "VmRSS:") },
		read: []metrics.Sample{
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/unused:bytes"},
		},
	}
}

// run samples until ctx ends.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(samplePeriod)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	metrics.Read(s.read)
	alloc := int64(s.read[0].Value.Uint64())
	inuse := alloc + int64(s.read[1].Value.Uint64())
	s.peak.PeakRSSBytes = max(s.peak.PeakRSSBytes, s.rss())
	s.peak.PeakHeapInuseBytes = max(s.peak.PeakHeapInuseBytes, inuse)
	s.peak.PeakHeapAllocBytes = max(s.peak.PeakHeapAllocBytes, alloc)
}

// window starts a scenario's window and returns the function that ends
// it with the peaks seen in between.
func (s *sampler) window() func() Usage {
	s.mu.Lock()
	s.peak = Usage{}
	s.mu.Unlock()
	s.sample()
	cpu, busy, start := cpuTime(), machineBusy(), time.Now()
	return func() Usage {
		s.sample()
		s.mu.Lock()
		defer s.mu.Unlock()
		u := s.peak
		u.CPUSeconds, u.WallSeconds = (cpuTime() - cpu).Seconds(), time.Since(start).Seconds()
		u.MachineBusyCores = (machineBusy() - busy).Seconds() / max(u.WallSeconds, 1e-3)
		return u
	}
}

// machineBusy returns the time all CPUs of the machine spent busy since
// boot, from the first line of /proc/stat; 0 when it cannot be read.
func machineBusy() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 8 || string(fields[0]) != "cpu" {
		return 0
	}
	var ticks int64
	// user nice system idle iowait irq softirq steal: all but idle and
	// iowait are busy.
	for i, f := range fields[1:8] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	// USER_HZ is 100 on every Linux Go supports.
	return time.Duration(ticks) * 10 * time.Millisecond
}

// cpuTime returns the user and system time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatus reads a kB field of a /proc/<pid>/status file, in bytes; 0
// when it cannot be read (not Linux, or the process is gone).
func procStatus(path, field string) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(field)) {
			continue
		}
		fields := bytes.Fields(line[len(field):])
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// meminfoTotal returns the machine's memory from /proc/meminfo, 0 if
// unknown.
func meminfoTotal() int64 { return procStatus("/proc/meminfo", "MemTotal:") }
