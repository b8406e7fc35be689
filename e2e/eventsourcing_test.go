package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
	"github.com/eventfold/eventfold/web"
)

// post appends an event over HTTP and returns the status, ETag and body.
func post(t *testing.T, c *testkit.Client, id, ifMatch, body string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.Base+"/customers/"+id+"/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Errorf("POST %s: %v", id, err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag"), b
}

func TestWritesAndIdempotentRetries(t *testing.T) {
	forEachBroker(t, func(t *testing.T, p *pipeline) {
		c := p.client
		status, tag, body := post(t, c, "w-1", "", `{"type":"customer.registered","data":{"name":"Ada","email":"ada@example.com"}}`)
		if status != http.StatusCreated || tag != `"1"` {
			t.Fatalf("register: %d %s %s", status, tag, body)
		}
		tests := []struct {
			name, id, ifMatch, body string
			status                  int
			code                    string
		}{
			{"conflict", "w-1", `"0"`, `{"type":"customer.renamed","data":{"name":"B"}}`, 409, "version_conflict"},
			{"not registered", "w-2", "", `{"type":"customer.renamed","data":{"name":"B"}}`, 422, "not_registered"},
			{"already registered", "w-1", "", `{"type":"customer.registered","data":{"name":"A","email":"a@example.com"}}`, 422, "already_registered"},
			{"invalid", "w-1", "", `{"type":"customer.email_changed","data":{"email":"nope"}}`, 422, "invalid"},
			{"malformed type", "w-1", "", `{"type":"customer.frozen"}`, 400, "malformed"},
			{"not JSON", "w-1", "", `{"type":`, 400, "malformed"},
			{"bad If-Match", "w-1", `"x"`, `{"type":"customer.renamed","data":{"name":"B"}}`, 400, "malformed"},
			{"subject mismatch", "w-1", "", `{"type":"customer.renamed","subject":"w-9","data":{"name":"B"}}`, 400, "malformed"},
			{"too large", "w-1", "", `{"type":"customer.renamed","data":{"name":"` + strings.Repeat("x", 70000) + `"}}`, 413, "too_large"},
			{"bad id", "w%201", "", `{"type":"customer.renamed","data":{"name":"B"}}`, 400, "invalid_id"},
		}
		for _, tt := range tests {
			status, _, body := post(t, c, tt.id, tt.ifMatch, tt.body)
			var e struct{ Error string }
			_ = json.Unmarshal(body, &e)
			if status != tt.status || e.Error != tt.code {
				t.Errorf("%s: %d %s, want %d %s", tt.name, status, body, tt.status, tt.code)
			}
		}
		// A client-chosen id makes a retry idempotent: the second
		// POST answers 200 with the first decision, produces nothing.
		rename := `{"id":"rename-once","type":"customer.renamed","data":{"name":"Once"}}`
		if status, tag, body := post(t, c, "w-1", `"1"`, rename); status != http.StatusCreated || tag != `"2"` {
			t.Fatalf("rename: %d %s %s", status, tag, body)
		}
		status, _, body = post(t, c, "w-1", `"1"`, rename)
		var d struct {
			EventID string `json:"event_id"`
			Outcome string `json:"outcome"`
			Version int64  `json:"version"`
		}
		if err := json.Unmarshal(body, &d); err != nil || status != http.StatusOK || d.Outcome != "accepted" || d.Version != 2 {
			t.Errorf("retry: %d %s, want 200 with the accepted decision at version 2", status, body)
		}
		if _, got := c.Customer(t, "w-1", ""); got == nil || got.Version != 2 || got.Name != "Once" {
			t.Errorf("after the retry: %+v, want version 2 named Once", got)
		}
	})
}

// TestConcurrentWritersGetDistinctVersions races 50 clients on a few
// customers with If-Match: every accepted write must have its own
// version, versions have no gaps, losers get 409, and the final state is
// the fold of the accepted events.
func TestConcurrentWritersGetDistinctVersions(t *testing.T) {
	forEachBroker(t, func(t *testing.T, p *pipeline) {
		c := p.client
		ids := []string{"race-1", "race-2", "race-3"}
		for _, id := range ids {
			if status, _, body := post(t, c, id, "", `{"type":"customer.registered","data":{"name":"R","email":"r@example.com"}}`); status != http.StatusCreated {
				t.Fatalf("register %s: %d %s", id, status, body)
			}
		}
		type win struct {
			version int64
			eventID string
			name    string
		}
		var (
			mu        sync.Mutex
			wins      = map[string][]win{}
			conflicts int
			other     []string
			wg        sync.WaitGroup
		)
		const clients, attempts = 50, 6
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(i)))
				for a := 0; a < attempts; a++ {
					id := ids[rng.Intn(len(ids))]
					_, cur := c.Customer(t, id, "")
					if cur == nil {
						continue
					}
					eventID := fmt.Sprintf("race-%d-%d", i, a)
					name := fmt.Sprintf("client %d attempt %d", i, a)
					body := fmt.Sprintf(`{"id":%q,"type":"customer.renamed","data":{"name":%q}}`, eventID, name)
					status, tag, resp := post(t, c, id, strconv.Quote(strconv.FormatInt(cur.Version, 10)), body)
					mu.Lock()
					switch status {
					case http.StatusCreated:
						v, _ := strconv.ParseInt(strings.Trim(tag, `"`), 10, 64)
						wins[id] = append(wins[id], win{v, eventID, name})
					case http.StatusConflict:
						conflicts++
					default:
						other = append(other, fmt.Sprintf("%d %s", status, resp))
					}
					mu.Unlock()
				}
			}(i)
		}
		wg.Wait()
		if len(other) > 0 {
			t.Errorf("unexpected answers: %v", other)
		}
		if conflicts == 0 {
			t.Error("no write lost a race: the test did not race")
		}
		total := 0
		for _, id := range ids {
			ws := wins[id]
			total += len(ws)
			sort.Slice(ws, func(i, j int) bool { return ws[i].version < ws[j].version })
			for i, w := range ws {
				if w.version != int64(i+2) {
					t.Fatalf("%s: accepted versions %v: want distinct versions 2..%d with no gap", id, ws, len(ws)+1)
				}
			}
			_, final := c.Customer(t, id, "")
			if final == nil || final.Version != int64(len(ws)+1) {
				t.Fatalf("%s: final state %+v, want version %d", id, final, len(ws)+1)
			}
			if len(ws) > 0 && final.Name != ws[len(ws)-1].name {
				t.Errorf("%s: final name %q, want the last accepted write's %q", id, final.Name, ws[len(ws)-1].name)
			}
			// The log holds exactly the accepted writes, in version order.
			events := readEvents(t, c, id, 0, 1000)
			if len(events) != len(ws)+1 {
				t.Fatalf("%s: %d events in the history, want %d", id, len(events), len(ws)+1)
			}
			for i, w := range ws {
				if got := events[i+1].decoded(t).ID; got != w.eventID {
					t.Errorf("%s version %d: event %s in the log, %s was answered 201", id, w.version, got, w.eventID)
				}
			}
			if d := testkit.DiffState(foldEvents(t, id, events), *final); d != "" {
				t.Errorf("%s: final state is not the fold of its events: %s", id, d)
			}
		}
		t.Logf("%d writes accepted, %d conflicts, over %d customers", total, conflicts, len(ids))
	})
}

// historyEvent is one entry of GET /customers/{id}/events.
type historyEvent struct {
	views.Event
}

func (e historyEvent) decoded(t *testing.T) processor.Event {
	t.Helper()
	ev, err := processor.Decode(keyOf(t, e.Event.Event), e.Event.Event)
	if err != nil {
		t.Fatalf("event at offset %d does not decode: %v", e.Offset, err)
	}
	ev.Offset = e.Offset
	if ev.Time.IsZero() {
		ev.Time = e.Time
	}
	return ev
}

func keyOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s struct{ Subject string }
	if err := json.Unmarshal(raw, &s); err != nil || s.Subject == "" {
		t.Fatalf("event without subject: %s", raw)
	}
	return s.Subject
}

func readEvents(t *testing.T, c *testkit.Client, id string, after int64, limit int) []historyEvent {
	t.Helper()
	var out []historyEvent
	for {
		status, body := c.Get(t, fmt.Sprintf("%s/customers/%s/events?after_version=%d&limit=%d", c.Base, id, after, limit))
		if status != http.StatusOK {
			t.Fatalf("events of %s: %d %s", id, status, body)
		}
		var page struct {
			Events           []historyEvent `json:"events"`
			NextAfterVersion int64          `json:"next_after_version"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatalf("events of %s: %v", id, err)
		}
		out = append(out, page.Events...)
		if page.NextAfterVersion == 0 {
			return out
		}
		after = page.NextAfterVersion
	}
}

// foldEvents folds history entries from an empty state, as a client would.
func foldEvents(t *testing.T, id string, events []historyEvent) processor.Customer {
	t.Helper()
	var state processor.Customer
	for i, e := range events {
		next, d := processor.Apply(state, e.decoded(t))
		if d.Outcome != processor.Accepted {
			t.Fatalf("%s: history event %d (%s) replays as %+v", id, i+1, e.Event.Event, d)
		}
		if e.Version != next.Version {
			t.Fatalf("%s: history entry says version %d, replay gives %d", id, e.Version, next.Version)
		}
		state = next
	}
	return state
}

func TestTimeTravelEqualsFoldOfHistoryPrefix(t *testing.T) {
	forEachBroker(t, func(t *testing.T, p *pipeline) {
		want := p.produceAndAwaitFold(t, testkit.Generate(11, 40, 1500), 60*time.Second)

		rng := rand.New(rand.NewSource(3))
		ids := testkit.Registered(want)
		for i := 0; i < 15; i++ {
			id := ids[rng.Intn(len(ids))]
			events := readEvents(t, p.client, id, 0, 7) // several pages
			if int64(len(events)) != want[id].Version {
				t.Fatalf("%s: %d events, want %d", id, len(events), want[id].Version)
			}
			if d := testkit.DiffState(foldEvents(t, id, events), want[id]); d != "" {
				t.Errorf("%s: fold of the history differs from the state: %s", id, d)
			}
			n := 1 + rng.Intn(len(events))
			status, past := p.client.Customer(t, id, fmt.Sprintf("version=%d", n))
			if status != http.StatusOK {
				t.Fatalf("%s?version=%d: %d", id, n, status)
			}
			prefix := foldEvents(t, id, events[:n])
			if d := testkit.DiffState(prefix, *past); d != "" {
				t.Errorf("%s?version=%d differs from the fold of its first %d events: %s", id, n, n, d)
			}
			at := events[n-1].Time.Format(time.RFC3339Nano)
			if status, then := p.client.Customer(t, id, "at="+at); status != http.StatusOK || then.Version != int64(n) {
				t.Errorf("%s?at=%s: %d %+v, want version %d", id, at, status, then, n)
			}
		}
		id := ids[0]
		for _, q := range []string{fmt.Sprintf("version=%d", want[id].Version+1), "at=2000-01-01T00:00:00Z"} {
			if status, _ := p.client.Customer(t, id, q); status != http.StatusNotFound {
				t.Errorf("%s?%s: %d, want 404", id, q, status)
			}
		}
		for _, q := range []string{"version=0", "version=x", "at=yesterday", "version=1&at=2026-01-01T00:00:00Z"} {
			if status, _ := p.client.Customer(t, id, q); status != http.StatusBadRequest {
				t.Errorf("%s?%s: %d, want 400", id, q, status)
			}
		}
	})
}

// sseEvent is one "state" event of a watch stream.
type sseEvent struct {
	ID   string
	Data processor.Customer
}

// watch opens a change stream and delivers its state events.
func watch(t *testing.T, ctx context.Context, url string) <-chan sseEvent {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("watch %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 4096)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		var kind string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data); err != nil {
					return
				}
			case line == "" && kind == "state":
				out <- ev
				ev, kind = sseEvent{}, ""
			}
		}
	}()
	return out
}

func TestWatchSeesEveryVersionInOrder(t *testing.T) {
	forEachBroker(t, func(t *testing.T, p *pipeline) {
		const id, renames = "watched-1", 150
		p.registerAndAwait(t, id, `{"name":"W","email":"w@example.com"}`)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		one := watch(t, ctx, p.client.Base+"/customers/"+id+"/watch")
		all := watch(t, ctx, p.client.Base+"/watch")
		if first := <-one; first.Data.Version != 1 {
			t.Fatalf("first watch event at version %d, want the current state (1)", first.Data.Version)
		}
		if got := gaugeValue(t, p, "eventfold_watchers"); got != 2 {
			t.Errorf("eventfold_watchers = %v, want 2", got)
		}
		// The ingest: renames of the watched customer interleaved with
		// events of others, produced while the stream is open.
		go func() {
			var recs []*kgo.Record
			for i := 0; i < renames; i++ {
				recs = append(recs, rawEvent(id, fmt.Sprint("ren-", i), processor.TypeRenamed, fmt.Sprintf(`{"name":"N%d"}`, i)))
				if i%10 == 0 {
					other := fmt.Sprintf("other-%d", i)
					recs = append(recs, rawEvent(other, "reg", processor.TypeRegistered, `{"name":"O","email":"o@example.com"}`))
					recs = append(recs, rawEvent(id, fmt.Sprint("bad-", i), processor.TypeRegistered, `{"name":"X","email":"x@example.com"}`)) // rejected: no state change
				}
			}
			p.produce(t, recs...)
		}()
		for want := int64(2); want <= renames+1; want++ {
			select {
			case ev, ok := <-one:
				if !ok {
					t.Fatalf("stream ended at version %d", want-1)
				}
				if ev.Data.Version != want || ev.Data.Name != fmt.Sprintf("N%d", want-2) || ev.ID != fmt.Sprintf("%s@%d", id, want) {
					t.Fatalf("watch event %s version %d name %q, want version %d", ev.ID, ev.Data.Version, ev.Data.Name, want)
				}
			case <-ctx.Done():
				t.Fatalf("waiting for version %d: %v", want, ctx.Err())
			}
		}
		// The global stream saw the same versions of the watched
		// customer, in order, and the other customers too.
		var last int64 = 1
		others := 0
		for last < renames+1 {
			select {
			case ev := <-all:
				if ev.Data.ID != id {
					others++
					continue
				}
				if ev.Data.Version != last+1 {
					t.Fatalf("global stream: %s at version %d after %d", id, ev.Data.Version, last)
				}
				last = ev.Data.Version
			case <-ctx.Done():
				t.Fatalf("global stream stopped at version %d: %v", last, ctx.Err())
			}
		}
		if others == 0 {
			t.Error("global stream showed no other customer")
		}
	})
}

func rawEvent(key, id, typ, data string) *kgo.Record {
	return &kgo.Record{Key: []byte(key), Value: []byte(fmt.Sprintf(
		`{"specversion":"1.0","id":"%s-%s","source":"/test","type":%q,"data":%s}`, key, id, typ, data))}
}

// registerAndAwait produces the registration of customer id with data
// and waits until the service serves it.
func (p *pipeline) registerAndAwait(t *testing.T, id, data string) {
	t.Helper()
	p.produce(t, rawEvent(id, "reg", processor.TypeRegistered, data))
	if status, _ := p.client.Customer(t, id, "min_version=1&wait=10s"); status != http.StatusOK {
		t.Fatalf("register: %d", status)
	}
}

func gaugeValue(t testing.TB, p *pipeline, name string) float64 {
	t.Helper()
	families, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestSlowWatcherIsDropped: a client that stops reading is dropped, while
// the view and a reading watcher go on at full speed.
func TestSlowWatcherIsDropped(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, func(c *web.Config) { c.WatchWriteTimeout = 300 * time.Millisecond })
	const id, renames = "slow-1", 20000
	p.registerAndAwait(t, id, `{"name":"S","email":"s@example.com"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// The slow client: connects, then never reads.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.client.Base+"/customers/"+id+"/watch", nil)
	slow, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	fast := watch(t, ctx, p.client.Base+"/customers/"+id+"/watch")
	<-fast // current state
	// Long names make each frame large, so the slow client's socket
	// buffers fill and the server's writes block.
	long := strings.Repeat("n", 2000)
	go func() {
		// Small batches with pauses: a steady stream a reading client keeps
		// up with even on a loaded machine (it is dropped when it falls
		// 4,096 changes behind), about 10 MB for the one that does not read.
		const batch = 250
		for b := 0; b < renames; b += batch {
			var recs []*kgo.Record
			for i := b; i < b+batch; i++ {
				recs = append(recs, rawEvent(id, fmt.Sprint("ren-", i), processor.TypeRenamed, fmt.Sprintf(`{"name":"%s%d"}`, long[:190], i)))
			}
			p.produce(t, recs...)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for want := int64(2); want <= renames+1; want++ {
		select {
		case ev, ok := <-fast:
			if !ok {
				t.Fatalf("the reading watcher was dropped at version %d", want)
			}
			if ev.Data.Version != want {
				t.Fatalf("reading watcher got version %d, want %d", ev.Data.Version, want)
			}
		case <-ctx.Done():
			t.Fatalf("reading watcher stalled before version %d", want)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for gaugeValue(t, p, "eventfold_watchers") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("eventfold_watchers = %v, want 1: the slow watcher was not dropped", gaugeValue(t, p, "eventfold_watchers"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The dropped stream ends short of the last version.
	body, _ := io.ReadAll(slow.Body)
	if n := bytes.Count(body, []byte("event: state")); n >= renames+1 {
		t.Errorf("slow watcher received all %d states; it should have been dropped", n)
	}
}
