package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
	"github.com/eventfold/eventfold/web"
)

// hostilePadded registers customer id and renames it n times, each rename
// padded by an unknown data field to about 60 KiB: the largest events the
// contract lets a producer append.
func hostilePadded(t *testing.T, p *pipeline, id string, n int) {
	t.Helper()
	p.registerAndAwait(t, id, `{"name":"P","email":"p@example.com"}`)
	pad := strings.Repeat("x", 60<<10)
	for b := 0; b < n; b += 16 {
		var recs []*kgo.Record
		for i := b; i < min(b+16, n); i++ {
			recs = append(recs, rawEvent(id, fmt.Sprint("ren-", i), processor.TypeRenamed, fmt.Sprintf(`{"name":"P%d","pad":%q}`, i, pad)))
		}
		p.produce(t, recs...)
	}
	if status, _ := p.client.Customer(t, id, fmt.Sprintf("min_version=%d&wait=30s", n+1)); status != http.StatusOK {
		t.Fatalf("%s did not reach version %d: %d", id, n+1, status)
	}
}

// hostilePage is one page of GET /customers/{id}/events.
type hostilePage struct {
	Events           []views.Event `json:"events"`
	NextAfterVersion int64         `json:"next_after_version"`
}

// hostileEventPage reads the page at path, which must answer 200, and
// returns it with its body.
func hostileEventPage(t *testing.T, p *pipeline, path string) (hostilePage, []byte) {
	t.Helper()
	status, body := p.client.Get(t, p.client.Base+path)
	if status != http.StatusOK {
		t.Fatalf("%s: %d %.200s", path, status, body)
	}
	var page hostilePage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return page, body
}

// TestHistoryPageIsBoundedByBytes: a page of 1,000 padded events would be
// 36 MB; it stops at the byte budget, says where to go on, and the pages
// together still hold every event once, in order.
func TestHistoryPageIsBoundedByBytes(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	const id, renames = "padded-1", 600
	hostilePadded(t, p, id, renames)

	page, body := hostileEventPage(t, p, "/customers/"+id+"/events?limit=1000")
	t.Logf("one ?limit=1000 page: %d events, %d bytes", len(page.Events), len(body))
	if len(body) > views.MaxPageBytes+64<<10 {
		t.Errorf("a page is %d bytes, want at most the %d-byte budget and one event's envelope", len(body), views.MaxPageBytes)
	}
	if n := int64(len(page.Events)); n == 0 || page.NextAfterVersion != page.Events[n-1].Version {
		t.Errorf("a page cut by bytes must go on at its last version: %d events, next_after_version %d", n, page.NextAfterVersion)
	}
	events := readEvents(t, p.client, id, 0, 1000)
	if len(events) != renames+1 {
		t.Fatalf("the pages hold %d events, want %d", len(events), renames+1)
	}
	for i, e := range events {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
}

// TestHistoryReadsBoundTheHeap is the attack of the security review in
// process: 8 concurrent ?limit=1000 reads of the padded customer. Each
// used to hold its whole 36 MB page several times over (records, decoded
// events, the encoded body).
func TestHistoryReadsBoundTheHeap(t *testing.T) {
	p := startPipeline(t)
	const id, readers = "padded-2", 8
	hostilePadded(t, p, id, 600)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	var served atomic.Int64
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _ := p.client.Get(t, p.client.Base+"/customers/"+id+"/events?limit=1000")
			if status == http.StatusOK {
				served.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("%d concurrent ?limit=1000 reads (%d served): heap in use grew by %d MiB at its peak", readers, served.Load(), growth>>20)
	if served.Load() == 0 {
		t.Fatal("no read was served")
	}
	if growth > 128<<20 {
		t.Errorf("heap grew by %d MiB, want at most 128 MiB for %d readers", growth>>20, readers)
	}
}

// TestHistoryReadsTakeASlot: history and time travel count against
// --max-history-reads; with none allowed, each answers 503 JSON with
// Retry-After, as the other bounded requests do.
func TestHistoryReadsTakeASlot(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, func(c *web.Config) { c.MaxHistoryReads = 0 })
	const id = "slot-1"
	p.registerAndAwait(t, id, `{"name":"S","email":"s@example.com"}`)
	c := limClient(t, "127.0.0.1")
	for _, q := range []string{"/events?limit=1000", "?version=1", "?at=2100-01-01T00:00:00Z"} {
		t.Run(q, func(t *testing.T) {
			want := limAnswer{status: http.StatusServiceUnavailable, code: "too_many_history_reads", retryAfter: "1"}
			if got := limDo(t, c, http.MethodGet, p.client.Base+"/customers/"+id+q, ""); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	if status, _ := p.client.Customer(t, id, ""); status != http.StatusOK {
		t.Errorf("a plain lookup takes no history slot: %d", status)
	}
}

// TestHistoryAfterVersionOverflow: after_version at or past the last
// version, up to the largest int64, answers an empty last page; it used
// to overflow and start again at version 1.
func TestHistoryAfterVersionOverflow(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	const id = "overflow-1"
	p.registerAndAwait(t, id, `{"name":"O","email":"o@example.com"}`)
	p.produce(t, rawEvent(id, "ren", processor.TypeRenamed, `{"name":"O2"}`))
	if status, _ := p.client.Customer(t, id, "min_version=2&wait=10s"); status != http.StatusOK {
		t.Fatalf("rename: %d", status)
	}
	for _, test := range []struct {
		after    int64
		versions []int64
	}{
		{math.MaxInt64, nil},
		{math.MaxInt64 - 1, nil},
		{math.MaxInt64 - 999, nil},
		{2, nil},
		{3, nil},
		{1, []int64{2}},
		{0, []int64{1, 2}},
	} {
		t.Run(fmt.Sprint(test.after), func(t *testing.T) {
			page, _ := hostileEventPage(t, p, fmt.Sprintf("/customers/%s/events?after_version=%d&limit=1000", id, test.after))
			var got []int64
			for _, e := range page.Events {
				got = append(got, e.Version)
			}
			if fmt.Sprint(got) != fmt.Sprint(test.versions) || page.NextAfterVersion != 0 {
				t.Errorf("versions %v next %d, want %v and no next page", got, page.NextAfterVersion, test.versions)
			}
		})
	}
}
