package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eventfold/eventfold/internal/kafka"
)

// KStreamsResult sets eventfold beside the Kafka Streams baseline, on the
// same events topic in the same run.
type KStreamsResult struct {
	Threads int `json:"threads"`
	HeapMiB int `json:"heap_mib"`
	// Rounds are the folds, each system on a fresh group / application
	// id, the order alternating: eventfold first in even rounds.
	Rounds []FoldRound `json:"rounds"`
	// FoldEventfold and FoldKStreams are the medians of the rounds'
	// events/s; FoldRatio is eventfold's over Kafka Streams'.
	FoldEventfold float64 `json:"fold_eventfold_per_second"`
	FoldKStreams  float64 `json:"fold_kstreams_per_second"`
	FoldRatio     float64 `json:"fold_ratio"`
	// FoldPeakRSSBytes is the largest VmHWM of the Kafka Streams process
	// over the fold rounds.
	FoldPeakRSSBytes int64 `json:"fold_peak_rss_bytes"`
	// Restore is a fresh instance (empty local state) ready: eventfold
	// serve on an empty data dir, Kafka Streams on an empty state dir of
	// the folded application. Restart is the same instance started again
	// after a clean stop, with its local state.
	Restore ReadyPair `json:"restore"`
	Restart ReadyPair `json:"restart"`
	// Lookup is GET /customers/{id} against both, alternating rounds at
	// the lookup scenario's clients; nil without that scenario.
	Lookup *LookupPair `json:"lookup,omitempty"`
	// StateCheck compared every customer through both HTTP endpoints.
	StateCheck StateCheck `json:"state_check"`
}

// FoldRound is one round of the fold: both systems on the same topic.
type FoldRound struct {
	First     string     `json:"first"`
	Eventfold Throughput `json:"eventfold"`
	KStreams  Throughput `json:"kstreams"`
}

// Ready is one system's time from the start of its process to ready.
type Ready struct {
	Seconds      float64 `json:"seconds"`
	KeysPerSec   float64 `json:"keys_per_second"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
}

// ReadyPair is eventfold and Kafka Streams; a zero Eventfold means it
// was not measured (no serve binary).
type ReadyPair struct {
	Keys      int64   `json:"keys"`
	Eventfold Ready   `json:"eventfold"`
	KStreams  Ready   `json:"kstreams"`
	Ratio     float64 `json:"ratio_keys_per_second"`
}

// LookupPair is the lookup load against both endpoints.
type LookupPair struct {
	Clients   int     `json:"clients"`
	Eventfold Latency `json:"eventfold"`
	KStreams  Latency `json:"kstreams"`
	Ratio     float64 `json:"ratio"`
}

// StateCheck is the comparison of both folds' states.
type StateCheck struct {
	Customers  int `json:"customers"`
	Mismatches int `json:"mismatches"`
}

// errStateMismatch fails a run whose two folds disagree: the comparison
// would not be of equal work.
var errStateMismatch = errors.New("eventfold and Kafka Streams folded different states")

// comparison drives the Kafka Streams side of a run.
type comparison struct {
	cfg   Config
	cl    *cluster
	app   *kstreamsApp
	base  kafka.Topics
	r     *KStreamsResult
	live  *ksInstance // the instance serving lookups, if any
	state string      // its state dir
	// topics and dirs made for the extra rounds, removed at the end.
	topics []string
}

// newComparison builds the baseline; progress says what it does.
func newComparison(ctx context.Context, cfg Config, cl *cluster, topics kafka.Topics, progress func(string, ...any)) (*comparison, error) {
	progress("building the Kafka Streams baseline", "dir", cfg.KStreamsBuildDir)
	cp, err := buildKStreams(ctx, cfg.KStreamsBuildDir)
	if err != nil {
		return nil, err
	}
	threads := runtime.NumCPU()
	app := &kstreamsApp{classpath: cp, brokers: strings.Join(cl.kc.Brokers, ","), topic: topics.Events, threads: threads,
		heapMiB: cfg.KStreamsHeapMiB, dir: filepath.Join(cl.tmp, "kstreams")}
	return &comparison{cfg: cfg, cl: cl, app: app, base: topics, r: &KStreamsResult{Threads: threads, HeapMiB: cfg.KStreamsHeapMiB}}, nil
}

// appID names round's Kafka Streams application.
func (c *comparison) appID(round int) string {
	return c.base.Group + "-kstreams-" + strconv.Itoa(round)
}

// foldKStreams folds the events topic with a fresh application of round
// and stops it cleanly.
func (c *comparison) foldKStreams(ctx context.Context, round int, events int64) (Throughput, error) {
	id := c.appID(round)
	c.topics = append(c.topics, changelog(id))
	in, err := c.app.start(id, filepath.Join(c.app.dir, id))
	if err != nil {
		return Throughput{}, err
	}
	p, err := in.awaitRecords(ctx, events)
	if err != nil {
		in.kill()
		return Throughput{}, err
	}
	c.r.FoldPeakRSSBytes = max(c.r.FoldPeakRSSBytes, in.peakRSS())
	if err := in.stop(); err != nil {
		return Throughput{}, err
	}
	return throughput(p.Records, 0, time.Duration(max(p.ElapsedNs, int64(time.Millisecond)))), nil
}

func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ready starts an instance of round 0's application on the state dir and
// times it to ready; the instance stays up as c.live.
func (c *comparison) ready(ctx context.Context, keys int64) (Ready, error) {
	id := c.appID(0)
	in, err := c.app.start(id, c.state)
	if err != nil {
		return Ready{}, err
	}
	if err := in.awaitReady(ctx); err != nil {
		in.kill()
		return Ready{}, err
	}
	s := time.Since(in.started).Seconds()
	c.live = in
	return Ready{Seconds: s, KeysPerSec: float64(keys) / s, PeakRSSBytes: in.peakRSS()}, nil
}

// restore starts a fresh instance of round 0's application on an empty
// state dir: it restores the store from the changelog.
func (c *comparison) restore(ctx context.Context, keys int64, progress func(string, ...any)) error {
	progress("restoring Kafka Streams on an empty state dir")
	c.state = filepath.Join(c.app.dir, "restore")
	var err error
	c.r.Restore.Keys = keys
	c.r.Restore.KStreams, err = c.ready(ctx, keys)
	return err
}

// restart stops the live instance cleanly and starts it again on its
// state dir.
func (c *comparison) restart(ctx context.Context, keys int64, progress func(string, ...any)) error {
	progress("restarting Kafka Streams on its state dir")
	if err := c.stopLive(); err != nil {
		return err
	}
	var err error
	c.r.Restart.Keys = keys
	c.r.Restart.KStreams, err = c.ready(ctx, keys)
	return err
}

func (c *comparison) stopLive() error {
	if c.live == nil {
		return nil
	}
	in := c.live
	c.live = nil
	return in.stop()
}

// lookup loads both endpoints with the same clients, in turns.
func (c *comparison) lookup(ctx context.Context, svc *service, ids []string, progress func(string, ...any)) {
	progress("loading GET /customers/{id} of eventfold and of Kafka Streams", "clients", c.cfg.Clients, "duration", c.cfg.Duration)
	client := newHTTPClient(c.cfg.Clients)
	defer client.CloseIdleConnections()
	side := func(base string) request {
		return func(ctx context.Context, _ int, rng *rand.Rand) string {
			return get(ctx, client, base+"/customers/"+ids[rng.Intn(len(ids))])
		}
	}
	k, e := alternate(ctx, c.cfg.Clients, c.cfg.Duration, c.cfg.Seed, side(c.live.base), side(svc.base))
	l := &LookupPair{Clients: c.cfg.Clients, Eventfold: e.summary("200"), KStreams: k.summary("200")}
	l.Ratio = l.Eventfold.PerSec / max(l.KStreams.PerSec, 1e-9)
	c.r.Lookup = l
}

// comparable is what both folds must agree on for each customer.
type comparable struct {
	Version int64           `json:"version"`
	Status  string          `json:"status"`
	Name    string          `json:"name"`
	Email   string          `json:"email"`
	Address json.RawMessage `json:"address"`
}

// address is compared decoded: the two encoders order fields apart.
type address struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// checkState reads every customer from both endpoints and fails the run
// if any differs in version, status, name, email or address.
func (c *comparison) checkState(ctx context.Context, svc *service, ids []string, progress func(string, ...any)) error {
	progress("comparing every customer's state in eventfold and Kafka Streams", "customers", len(ids))
	const workers = 16
	client := newHTTPClient(workers)
	defer client.CloseIdleConnections()
	var (
		mu    sync.Mutex
		diffs []string
		bad   int
		errs  []error
		wg    sync.WaitGroup
	)
	next := make(chan string)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				e, err := readState(ctx, client, svc.base, id)
				var k comparable
				if err == nil {
					k, err = readState(ctx, client, c.live.base, id)
				}
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case !sameState(e, k):
					bad++
					if len(diffs) < 5 {
						diffs = append(diffs, fmt.Sprintf("%s: eventfold %+v address %s, Kafka Streams %+v address %s", id, e, e.Address, k, k.Address))
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	c.r.StateCheck = StateCheck{Customers: len(ids), Mismatches: bad}
	if len(errs) > 0 {
		return fmt.Errorf("failed to compare the states (%d errors): %w", len(errs), errors.Join(errs[:min(len(errs), 3)]...))
	}
	if bad > 0 {
		return fmt.Errorf("%w: %d of %d customers differ, e.g. %v", errStateMismatch, bad, len(ids), diffs)
	}
	return nil
}

func sameState(a, b comparable) bool {
	var aa, ba *address
	for _, p := range []struct {
		raw json.RawMessage
		out **address
	}{{a.Address, &aa}, {b.Address, &ba}} {
		if len(p.raw) > 0 && string(p.raw) != "null" {
			*p.out = &address{}
			if json.Unmarshal(p.raw, *p.out) != nil {
				return false
			}
		}
	}
	a.Address, b.Address = nil, nil
	return reflect.DeepEqual(a, b) && reflect.DeepEqual(aa, ba)
}

// readState reads one customer; a 404 is the zero state.
func readState(ctx context.Context, client *http.Client, base, id string) (comparable, error) {
	var out comparable
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/customers/"+id, nil)
	if err != nil {
		return out, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return out, fmt.Errorf("failed to read customer %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, fmt.Errorf("failed to read customer %s: %w", id, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(body, &out); err != nil {
			return out, fmt.Errorf("failed to decode customer %s from %s: %w", id, base, err)
		}
	case http.StatusNotFound:
	default:
		return out, fmt.Errorf("customer %s from %s: status %d: %s", id, base, resp.StatusCode, body)
	}
	return out, nil
}

// close stops the live instance and removes what the rounds made.
func (c *comparison) close() {
	if c.live != nil {
		c.live.kill()
		c.live = nil
	}
	if c.cl.kind != BrokerExternal || c.cfg.KeepTopics || len(c.topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.cl.deleteTopics(ctx, c.topics...); err != nil {
		c.cfg.Progress.Warn("failed to delete the Kafka Streams rounds' topics", "error", err)
	}
}

// serveReady is eventfold serve's restart as a Ready.
func serveReady(s *ServeRestart) Ready {
	return Ready{Seconds: s.ReadySeconds, KeysPerSec: float64(s.Customers) / max(s.ReadySeconds, 1e-3), PeakRSSBytes: s.PeakRSSBytes}
}
