package e2e

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventfold/eventfold/internal/embedded"
	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// watcher reads one change stream and keeps the versions of every
// customer's state events, in the order they came.
type watcher struct {
	name string
	mu   sync.Mutex
	seen map[string][]int64
	n    int
	done chan struct{} // closed when the stream ends
}

// openWatch opens GET path at url with the token, checks the 200 and
// reads the stream in the background until ctx ends.
func openWatch(ctx context.Context, t *testing.T, url, path string) *watcher {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+partitionedToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET %s at %s: %d, want 200", path, url, resp.StatusCode)
	}
	w := &watcher{name: path + " at " + url, seen: map[string][]int64{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		state := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "event: state":
				state = true
			case state && strings.HasPrefix(line, "id: "):
				id, version, ok := strings.Cut(strings.TrimPrefix(line, "id: "), "@")
				v, err := strconv.ParseInt(version, 10, 64)
				if ok && err == nil {
					w.mu.Lock()
					w.seen[id] = append(w.seen[id], v)
					w.n++
					w.mu.Unlock()
				}
				state = false
			case line == "":
				state = false
			}
		}
	}()
	return w
}

func (w *watcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// check compares the versions seen of each customer of want with 1 to
// its version: every accepted change once, in version order.
func (w *watcher) check(t *testing.T, want map[string]int64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, last := range want {
		expected := make([]int64, last)
		for v := range expected {
			expected[v] = int64(v) + 1
		}
		if got := w.seen[id]; !slices.Equal(got, expected) {
			t.Errorf("%s: %s's versions %v, want %v", w.name, id, got, expected)
		}
	}
	for id := range w.seen {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: state events of %s, which no event changed", w.name, id)
		}
	}
}

// TestPartitionedWatchStreamsSeeEveryInstance: in partitioned mode, GET
// /watch on any instance streams the accepted changes of every customer,
// those folded by the other instances too (it streamed only the
// instance's own partitions: about a third), each customer's in version
// order, none missing, none twice; and a customer's stream opened at an
// instance that does not own it streams the owner's changes.
func TestPartitionedWatchStreamsSeeEveryInstance(t *testing.T) {
	t.Parallel()
	const partitions = 12
	broker, topics, live := startSplit(t, partitions, 3, 0)

	lines := testkit.Generate(21, 120, 900)
	want := map[string]int64{}
	for id, c := range testkit.ReferenceFold(t, lines) {
		if c.Version > 0 {
			want[id] = c.Version
		}
	}
	total := 0
	for _, v := range want {
		total += int(v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var all []*watcher
	for _, in := range live {
		all = append(all, openWatch(ctx, t, in.url, "/watch"))
	}
	// Customers' streams through an instance that does not own them.
	ids := testkit.Registered(testkit.ReferenceFold(t, lines))[:6]
	var single []*watcher
	for _, id := range ids {
		owner, stranger := ownerOf(live, id, partitions)
		w := openWatch(ctx, t, stranger.url, "/customers/"+id+"/watch")
		if owner == nil || stranger == nil {
			t.Fatalf("no owner or no stranger for %s", id)
		}
		single = append(single, w)
	}

	produceRecords(t, broker, topics.Events, 30*time.Second, lineRecords(lines))

	deadline := time.Now().Add(60 * time.Second)
	for _, w := range all {
		for w.count() < total && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%s: %d of %d state events", w.name, w.count(), total)
		w.check(t, want)
	}
	for i, w := range single {
		one := map[string]int64{ids[i]: want[ids[i]]}
		for w.count() < int(want[ids[i]]) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		w.check(t, one)
	}
	if t.Failed() {
		for _, in := range live {
			t.Logf("%s owns %v", in.url, in.svc.View.Owned())
		}
	}
	for _, in := range live {
		if !in.svc.Tail.Following() {
			t.Errorf("%s: the tail of the table does not follow it while a watcher is open", in.url)
		}
	}
}

// startSplit starts kfake with the given partitions and n partitioned
// instances on it, with standby replicas, and waits until they split
// the partitions.
func startSplit(t *testing.T, partitions int32, n, standbys int) (broker string, topics kafka.Topics, live []*instance) {
	t.Helper()
	broker = testkit.StartKfake(t, embedded.Config{Partitions: int(partitions)})
	topics = kafka.Topics{Events: "customer-events", Group: "customers", Partitions: partitions, Replication: 1}
	live = make([]*instance, n)
	for i := range live {
		live[i] = startStandbyInstance(t, broker, topics, standbys)
	}
	awaitSplit(t, live, partitions, 60*time.Second)
	return broker, topics, live
}

// TestPartitionedCustomerStreamEndsWhenItsPartitionMoves: a customer's
// stream is served by the instance that folds the customer. When its
// partition moves to another instance (here a third one joins), the
// stream used to stay open and silent, missing every later change; now it
// ends, and the client's reconnection reaches the new owner and starts
// from the current state. The streams opened at one instance count
// against its watcher bounds, the forwarded ones too.
func TestPartitionedCustomerStreamEndsWhenItsPartitionMoves(t *testing.T) {
	t.Parallel()
	const partitions = 12
	broker, topics, live := startSplit(t, partitions, 2, 0)
	lines := testkit.Generate(22, 48, 150)
	produceRecords(t, broker, topics.Events, 30*time.Second, lineRecords(lines))
	want := testkit.ReferenceFold(t, lines)
	live[0].client.AwaitFold(t, want, 60*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	entry := live[0]
	ids := testkit.Registered(want)
	streams := map[string]*watcher{}
	before := map[string]*instance{}
	forwarded := 0
	for _, id := range ids {
		streams[id] = openWatch(ctx, t, entry.url, "/customers/"+id+"/watch")
		before[id], _ = ownerOf(live, id, partitions)
		if before[id] != entry {
			forwarded++
		}
	}
	if forwarded == 0 {
		t.Fatal("no stream was forwarded: every customer is owned by the entry instance")
	}
	if got := gaugeValue(t, &pipeline{reg: entry.svc.Registry}, "eventfold_watchers"); got != float64(len(ids)) {
		t.Errorf("eventfold_watchers at the instance the %d streams reached (%d of them forwarded) = %v, want %d: a forwarded stream must count where its client is",
			len(ids), forwarded, got, len(ids))
	}

	live = append(live, startInstance(t, broker, topics))
	awaitSplit(t, live, partitions, 60*time.Second)

	var moved, kept []string
	for _, id := range ids {
		if owner, _ := ownerOf(live, id, partitions); owner != before[id] {
			moved = append(moved, id)
		} else {
			kept = append(kept, id)
		}
	}
	t.Logf("%d of %d customers moved to another instance", len(moved), len(ids))
	if len(moved) == 0 {
		t.Fatal("the rebalance moved no customer's partition")
	}
	split := time.Now()
	deadline := time.After(15 * time.Second)
	for _, id := range moved {
		select {
		case <-streams[id].done:
		case <-deadline:
			t.Fatalf("the stream of %s, whose partition moved away from %s, is still open 15 s after the move", id, before[id].url)
		}
	}
	t.Logf("the %d streams of moved customers ended within %s of the new split", len(moved), time.Since(split).Round(time.Millisecond))
	// An instance whose picture of the group lagged a moment may end a
	// stream it keeps (the client just reconnects), but not all of them.
	ended := 0
	for _, id := range kept {
		select {
		case <-streams[id].done:
			ended++
		default:
		}
	}
	if len(kept) > 0 && ended == len(kept) {
		t.Errorf("every stream ended, also the %d whose partitions stayed where they were", len(kept))
	} else if ended > 0 {
		t.Logf("%d of %d streams of customers that did not move ended too", ended, len(kept))
	}

	// The client reconnects and misses nothing: a change made after the
	// move comes first as the current state, then as it happens.
	id := moved[0]
	if resp := postWithToken(t, entry.url+"/customers/"+id+"/events", `{"type":"customer.renamed","data":{"name":"Moved"}}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("rename %s after the move: %d, want 201", id, resp.StatusCode)
	}
	again := openWatch(ctx, t, entry.url, "/customers/"+id+"/watch")
	if resp := postWithToken(t, entry.url+"/customers/"+id+"/events", `{"type":"customer.renamed","data":{"name":"Moved again"}}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("rename %s after the reconnection: %d, want 201", id, resp.StatusCode)
	}
	until := time.Now().Add(15 * time.Second)
	for again.count() < 2 && time.Now().Before(until) {
		time.Sleep(20 * time.Millisecond)
	}
	again.mu.Lock()
	got := again.seen[id]
	again.mu.Unlock()
	if v := want[id].Version; !slices.Equal(got, []int64{v + 1, v + 2}) {
		t.Errorf("the reconnected stream of %s: versions %v, want [%d %d]", id, got, v+1, v+2)
	}
}
