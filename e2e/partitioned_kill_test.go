package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
// random customers through all of them, and SIGKILLs one; once without
// standbys and once with --standby-replicas 1. It writes down the failed
// reads, the p99 of the answered ones, and when the last read failed: the
// group notices the dead member when its session times out (sarama's
// 10 s default), then rebalances. Without standbys the dead instance's
// customers fail until then; with one, its standby answers them, and
// reads fail only while the group rebalances. No read may answer anything
// but 200 or 503 with Retry-After, and every 200 must be the reference
// state.
func TestPartitionedInstanceSIGKILL(t *testing.T) {
	t.Parallel()
	bin := binBuild(t) // once for both runs
	results := map[int]killResult{}
	for _, standbys := range []int{0, 1} {
		t.Run(fmt.Sprintf("standby-replicas=%d", standbys), func(t *testing.T) {
			results[standbys] = killUnderLoad(t, bin, standbys)
		})
	}
	if t.Failed() || len(results) < 2 {
		return // a run filtered to one of them compares nothing
	}
	without, with := results[0], results[1]
	if with.byStandby == 0 {
		t.Error("no read was answered by a standby after the kill")
	}
	if with.failed*2 > without.failed {
		t.Errorf("with a standby %d reads failed, without %d: want less than half", with.failed, without.failed)
	}
}

// killResult is what the read load saw around a SIGKILL.
type killResult struct {
	answered, failed, byStandby int64
	p99                         time.Duration
	// firstFailed and lastFailed are the times from the kill to the
	// first and last failed read; moved, to the survivors owning every
	// partition.
	firstFailed, lastFailed, moved time.Duration
}

func killUnderLoad(t *testing.T, bin string, standbys int) killResult {
	const partitions = 12
	broker := testkit.StartKfake(t, embedded.Config{Partitions: partitions})
	servers := make([]*server, 3)
	for i := range servers {
		dir := t.TempDir()
		servers[i] = startServe(t, bin, serveSpec{
			name: fmt.Sprintf("instance-%d", i+1),
			args: []string{"--brokers", broker, "--partitions", fmt.Sprint(partitions), "--data-dir", filepath.Join(dir, "data"),
				"--erasure", "off", "--serve-mode", "partitioned", "--standby-replicas", fmt.Sprint(standbys)},
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
		mu                      sync.Mutex
		latencies               []time.Duration
		res                     killResult
		failed, byStandby       atomic.Int64
		firstFailed, lastFailed atomic.Int64 // nanoseconds after the kill
		killed                  atomic.Pointer[time.Time]
		stop                    atomic.Bool
		wg                      sync.WaitGroup
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
					if tag := resp.Header.Get("ETag"); tag != fmt.Sprintf("%q", fmt.Sprint(want[id].Version)) {
						t.Errorf("GET %s: ETag %s, want version %d (headers %v)", id, tag, want[id].Version, resp.Header)
						return
					}
					if resp.Header.Get(web.HeaderStandby) == "true" {
						byStandby.Add(1)
					}
					mu.Lock()
					latencies = append(latencies, took)
					mu.Unlock()
				case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
					failed.Add(1)
					if k := killed.Load(); k != nil {
						at := int64(time.Since(*k))
						firstFailed.CompareAndSwap(0, at)
						lastFailed.Store(at)
					}
				default:
					t.Errorf("GET %s: %d, want 200, or 503 with Retry-After", id, resp.StatusCode)
					return
				}
			}
		})
	}
	time.Sleep(time.Second) // the load runs before the kill too
	now := time.Now()
	killed.Store(&now)
	victim.kill()
	// Moved: the survivors own every partition between them; then every
	// customer is answered through both survivors at once.
	for {
		if res.moved == 0 && ownedBy(rest) == partitions {
			res.moved = time.Since(now)
		}
		all := res.moved != 0
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
			break
		}
		if time.Since(now) > 90*time.Second {
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
	res.answered, res.failed, res.byStandby = int64(len(latencies)), failed.Load(), byStandby.Load()
	res.p99 = latencies[len(latencies)*99/100]
	res.firstFailed, res.lastFailed = time.Duration(firstFailed.Load()), time.Duration(lastFailed.Load())
	t.Logf("SIGKILL of 1 of 3 partitioned instances, --standby-replicas %d, under a read load through the other two: %d reads answered (p99 %s, %d by a standby), %d failed with 503, from %s to %s after the kill; the survivors owned every partition %s after it",
		standbys, res.answered, res.p99.Round(10*time.Microsecond), res.byStandby, res.failed,
		res.firstFailed.Round(time.Millisecond), res.lastFailed.Round(time.Millisecond), res.moved.Round(time.Millisecond))
	return res
}

// ownedBy sums eventfold_partitions_owned of the servers, -1 when one
// cannot tell.
func ownedBy(servers []*server) int {
	sum := 0
	for _, s := range servers {
		resp, err := http.Get(s.client.Base + "/metrics")
		if err != nil {
			return -1
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return -1
		}
		n := -1
		for line := range strings.Lines(string(body)) {
			if v, ok := strings.CutPrefix(line, "eventfold_partitions_owned "); ok {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if n < 0 {
			return -1
		}
		sum += n
	}
	return sum
}
