package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// discardStream is a watch client inside the process: the handler writes
// its frames here, where they are counted and dropped, so the benchmark
// measures the server's work and not a socket's.
type discardStream struct {
	header http.Header
	states atomic.Int64
}

func (d *discardStream) Header() http.Header { return d.header }
func (d *discardStream) WriteHeader(int)     {}
func (d *discardStream) Flush()              {}

// SetWriteDeadline is there because the server's writers have it.
func (d *discardStream) SetWriteDeadline(time.Time) error { return nil }
func (d *discardStream) Write(p []byte) (int, error) {
	// The handler writes each frame's start in a Write of its own.
	if bytes.HasPrefix(p, []byte("event: state\n")) {
		d.states.Add(1)
	}
	return len(p), nil
}

// BenchmarkWatchFanout measures the process's CPU time per folded event
// (cpu-ns/event: user and system time over the events), on the in-process
// pipeline, with 0 and 300 open GET /watch streams. Each op is one rename;
// run it with a fixed count, such as -benchtime=3000x.
func BenchmarkWatchFanout(b *testing.B) {
	for _, watchers := range []int{0, 300} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			p := startPipeline(b, func(c *web.Config) { c.MaxWatchers, c.MaxWatchersPerClient = 1000, 0 })
			const customers = 100
			var regs []*kgo.Record
			for i := range customers {
				regs = append(regs, rawEvent(fmt.Sprint("fan-", i), "reg", processor.TypeRegistered, `{"name":"F","email":"f@example.com"}`))
			}
			p.produce(b, regs...)
			if status, _ := p.client.Customer(b, fmt.Sprint("fan-", customers-1), "min_version=1&wait=20s"); status != http.StatusOK {
				b.Fatalf("register: %d", status)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			streams := make([]*discardStream, watchers)
			for i := range streams {
				streams[i] = &discardStream{header: http.Header{}}
				req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/watch", nil)
				wg.Add(1)
				go func() { defer wg.Done(); p.handler.ServeHTTP(streams[i], req) }()
			}
			deadline := time.Now().Add(10 * time.Second)
			for gaugeValue(b, p, "eventfold_watchers") != float64(watchers) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			recs := make([]*kgo.Record, b.N)
			for i := range recs {
				id := fmt.Sprint("fan-", i%customers)
				recs[i] = rawEvent(id, fmt.Sprint("ren-", i), processor.TypeRenamed, fmt.Sprintf(`{"name":"F%d"}`, i))
			}
			start := cpuTime(b)
			b.ResetTimer()
			p.produce(b, recs...)
			last := fmt.Sprint("fan-", (b.N-1)%customers)
			for try := 0; ; try++ {
				status, _ := p.client.Customer(b, last, fmt.Sprintf("min_version=%d&wait=30s", 1+(b.N-1)/customers+1))
				if status == http.StatusOK {
					break
				}
				if try == 5 {
					b.Fatalf("fold: %d", status)
				}
			}
			deadline = time.Now().Add(60 * time.Second)
			for _, s := range streams {
				for s.states.Load() < int64(b.N) {
					if time.Now().After(deadline) {
						b.Fatalf("a watcher saw %d of %d changes", s.states.Load(), b.N)
					}
					time.Sleep(time.Millisecond)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/event")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
