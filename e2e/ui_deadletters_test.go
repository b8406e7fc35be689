package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/web/ui"
)

// TestUIConsoleDeadLetters: the dead letters can be acted on. They filter
// by reason and key, link a key to its customer, show the record's own
// headers, copy as a kcat command, and replay: a record dead-lettered as
// wrong_partition (a producer with the wrong partitioner, since fixed) is
// produced again by key, carries the replay's audit headers, and folds.
// At 1280 and 390 px.
func TestUIConsoleDeadLetters(t *testing.T) {
	chromium := uiChromium(t)
	p := startPipeline(t)
	good := &kgo.Record{Key: []byte("dl-good"), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc-1")}},
		Value: []byte(binEvent("dl-ev-1", "dl-good", "customer.registered", "2026-03-01T00:00:00Z", `{"name":"Ada","email":"ada@example.com"}`).Value)}
	byKey := kgo.StickyKeyPartitioner(nil).ForTopic(p.topics.Events)
	right := int32(byKey.Partition(good, int(p.topics.Partitions)))
	good.Partition = 1
	if right == 1 {
		good.Partition = 2
	}
	p.produceMixed(t, []*kgo.Record{good, {Key: []byte("dl-bad"), Value: []byte("not json")}})

	b := uiOpen(t, chromium, p.client.Base)
	items := `[...document.querySelectorAll('#ops-dlq li')]`
	keys := items + `.map(li => li.dataset.key).sort().join()`
	b.do(chromedp.Navigate(p.client.Base + "/#/operations"))
	b.wait("both dead letters", keys+` === 'dl-bad,dl-good'`)
	for _, width := range []int64{1280, 390} {
		b.sub(t, fmt.Sprint(width), func() {
			b.do(chromedp.EmulateViewport(width, 844))
			b.do(chromedp.SetValue(chromedp.ID("dlq-reason"), "wrong_partition"),
				chromedp.Evaluate[chromedp.Void](`document.getElementById('dlq-reason').dispatchEvent(new Event('change'))`))
			b.wait("filtered by reason", keys+` === 'dl-good'`)
			b.do(chromedp.SetValue(chromedp.ID("dlq-reason"), ""), chromedp.SendKeys(chromedp.ID("dlq-key"), "dl-bad"))
			b.wait("filtered by key", keys+` === 'dl-bad' && document.getElementById('dlq-status').textContent.includes('match')`)
			b.do(uiClear("dlq-key"))
			b.wait("unfiltered", keys+` === 'dl-bad,dl-good'`)
			b.wait("no horizontal scroll", uiNoHorizontalScroll)
		})
	}
	b.do(chromedp.EmulateViewport(1280, 900))
	li := `document.querySelector('#ops-dlq li[data-key="dl-good"]')`
	b.wait("the key links to its customer, the headers and a kcat command", li+`.querySelector('a.dlq-key').getAttribute('href') === '#/customers/dl-good' && `+
		li+`.querySelector('.dlq-headers').textContent.includes('abc-1') && `+
		li+`.querySelector('.dlq-kcat pre').textContent.includes("-k 'dl-good'") && `+li+`.querySelector('.dlq-kcat pre').textContent.includes("-H 'trace=abc-1'") && `+
		li+`.querySelector('.dlq-kcat pre').textContent.includes("-t 'customer-events'")`)
	if status, _ := p.client.Get(t, p.client.Base+"/customers/dl-good"); status != http.StatusNotFound {
		t.Fatalf("dl-good before the replay: %d, want 404 (its only event was dead-lettered)", status)
	}
	b.do(chromedp.Click(chromedp.CSS(`#ops-dlq li[data-key="dl-good"] button.dlq-replay`)))
	b.wait("the replay's answer", li+`.querySelector('.dlq-result').dataset.status === '201' && `+li+`.querySelector('.dlq-result').textContent.includes('Replayed to customer-events')`)
	b.do(chromedp.Click(chromedp.CSS(`#ops-dlq li[data-key="dl-good"] .dlq-result a`)))
	b.wait("the replayed event folded", `document.getElementById('customer-id').textContent === 'dl-good' && document.getElementById('customer-version').textContent === '1'`)

	// The audit trail: the replayed record names its dead letter and
	// time, keeps its own headers, and is counted.
	replayed := readEventsWithHeader(t, p, ui.HeaderReplayedFrom)
	if replayed == nil || string(replayed.Key) != "dl-good" || replayed.Partition != right {
		t.Fatalf("replayed record %+v, want key dl-good on partition %d", replayed, right)
	}
	hdr := map[string]string{}
	for _, h := range replayed.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if !strings.HasPrefix(hdr[ui.HeaderReplayedFrom], "customer-events.dlq/") || hdr["trace"] != "abc-1" || hdr[ui.HeaderReplayedAt] == "" {
		t.Errorf("replayed headers %v, want the dead letter's place, the time and trace=abc-1", hdr)
	}
	if got := sumCounter(t, p.reg, "eventfold_ui_dead_letters_replayed_total"); got != 1 {
		t.Errorf("eventfold_ui_dead_letters_replayed_total = %v, want 1", got)
	}
	b.checkClean()
}

// TestDeadLetterReplayRefuses: bad bodies, missing dead letters and
// browser pages of another origin get clear 4xx answers, and nothing is
// produced.
func TestDeadLetterReplayRefuses(t *testing.T) {
	p := startPipeline(t)
	tests := []struct {
		name, body, site string
		status           int
		code             string
	}{
		{"no offset", `{"partition":0}`, "", http.StatusBadRequest, "invalid_body"},
		{"not JSON", `{`, "", http.StatusBadRequest, "invalid_body"},
		{"negative", `{"partition":0,"offset":-1}`, "", http.StatusBadRequest, "invalid_body"},
		{"no such dead letter", `{"partition":0,"offset":7}`, "", http.StatusNotFound, "not_found"},
		{"another origin", `{"partition":0,"offset":0}`, "cross-site", http.StatusForbidden, "cross_origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, p.client.Base+"/ui/api/dead-letters/replay", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.site != "" {
				req.Header.Set("Sec-Fetch-Site", tt.site)
			}
			resp, err := p.client.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error string }
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tt.status || e.Error != tt.code {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, e.Error, tt.status, tt.code)
			}
		})
	}
	if got := sumCounter(t, p.reg, "eventfold_ui_dead_letters_replayed_total"); got != 0 {
		t.Errorf("eventfold_ui_dead_letters_replayed_total = %v, want 0", got)
	}
}

// readEventsWithHeader returns the first record of the events topic with
// the header key, or nil.
func readEventsWithHeader(t *testing.T, p *pipeline, key string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.broker), kgo.ConsumeTopics(p.topics.Events), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			for _, h := range r.Headers {
				if h.Key == key {
					return r
				}
			}
		}
	}
	return nil
}
