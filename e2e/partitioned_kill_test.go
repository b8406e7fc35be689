package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/web"
)

// TestPartitionedInstanceSIGKILL runs three `eventfold serve --serve-mode
// partitioned` processes on one kfake cluster of 12 partitions, reads
// random customers through all of them, and SIGKILLs one. It writes down
// the failed reads, the p99 of the answered ones, and the time until every
// customer is answered again through the two others: the group notices
// the dead member when its session times out (sarama's 10 s default),
// then rebalances. No read may answer anything but 200 or 503 with
// Retry-After, and every 200 must be the reference state.
func TestPartitionedInstanceSIGKILL(t *testing.T) {
	t.Parallel()
	const partitions = 12
	broker := testkit.StartKfake(t, embedded.Config{Partitions: partitions})
	bin := binBuild(t)
	servers := make([]*server, 3)
	for i := range servers {
		dir := t.TempDir()
		servers[i] = startServe(t, bin, serveSpec{
			name: fmt.Sprintf("instance-%d", i+1),
			args: []string{"--brokers", broker, "--partitions", fmt.Sprint(partitions), "--data-dir", filepath.Join(dir, "data"),
				"--erasure", "off", "--serve-mode", "partitioned"},
			kafkaAddr: broker, logFile: filepath.Join(dir, "serve.log"), logTail: 16 << 10,
		})
	}
	for _, s := range servers {
		s.waitReady(60 * time.Second)
	}
	lines := testkit.Generate(23, 300, 1500)
	produceRecords(t, broker, "customer-events", 30*time.Second, lineRecords(lines))
	want := testkit.ReferenceFold(t, lines)
	for _, s := range servers {
		s.client.AwaitFold(t, want, 90*time.Second)
	}
	ids := testkit.Registered(want)

	// Every instance has served some keys itself: they split the table.
	servedBy := map[string]bool{}
	for _, id := range ids {
		resp := getWithToken(t, servers[0].client.Base+"/customers/"+id, "")
		servedBy[resp.Header.Get(web.HeaderServedBy)] = true
	}
	if len(servedBy) != len(servers) {
		t.Fatalf("the customers are served by %d instances, want %d: %v", len(servedBy), len(servers), servedBy)
	}

	victim, rest := servers[0], servers[1:]
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failed    atomic.Int64
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	hc := &http.Client{Timeout: 5 * time.Second}
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for !stop.Load() {
				id := ids[rng.IntN(len(ids))]
				s := rest[rng.IntN(len(rest))]
				start := time.Now()
				resp, err := hc.Get(s.client.Base + "/customers/" + id)
				if err != nil {
					t.Errorf("GET %s: %v", id, err)
					return
				}
				resp.Body.Close()
				took := time.Since(start)
				switch {
				case resp.StatusCode == http.StatusOK:
					mu.Lock()
					latencies = append(latencies, took)
					mu.Unlock()
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
					failed.Add(1)
				default:
					t.Errorf("GET %s: %d, want 200, or 503 with Retry-After", id, resp.StatusCode)
					return
				}
			}
		})
	}
	time.Sleep(time.Second) // the load runs before the kill too
	killed := time.Now()
	victim.kill()
	// Recovered: every customer answered through both survivors at once.
	var recovered time.Duration
	for {
		all := true
		for _, id := range ids {
			for _, s := range rest {
				if status, _ := s.get("/customers/" + id); status != http.StatusOK {
					all = false
					break
				}
			}
			if !all {
				break
			}
		}
		if all {
			recovered = time.Since(killed)
			break
		}
		if time.Since(killed) > 90*time.Second {
			t.Fatal("the survivors did not answer every customer within 90 s of the kill")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	for _, s := range rest {
		s.client.AwaitFold(t, want, 30*time.Second)
	}
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	t.Logf("SIGKILL of 1 of 3 partitioned instances under a read load through the other two: %d reads answered (p99 %s), %d failed with 503; every customer answered again %s after the kill",
		len(latencies), p99.Round(10*time.Microsecond), failed.Load(), recovered.Round(time.Millisecond))
}
