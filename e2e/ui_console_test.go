package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/internal/testing/testkit"
)

// TestUIConsoleDefects drives the page as a new user would, on an empty
// in-process service, through the defects of issue 18: each subtest is
// one defect, and each failed on the page before its fix.
func TestUIConsoleDefects(t *testing.T) {
	chromium := uiChromium(t)
	p := startPipeline(t)
	b := uiOpen(t, chromium, p.client.Base)
	b.do(chromedp.Navigate(p.client.Base + "/"))
	b.wait("the empty list", `document.getElementById('list-status').textContent.includes('No customers yet')`)

	b.sub(t, "1 the list updates itself", func() {
		p.produce(b.t, uiRecord(binEvent("con-1", "cust-a", "customer.registered", "2026-03-01T00:00:00Z", `{"name":"Ada","email":"ada@example.com"}`)))
		b.wait("a customer produced to Kafka in the list", `document.querySelector('#customer-list li[data-id="cust-a"]') !== null && `+
			`!document.getElementById('list-status').textContent.includes('No customers')`)
		uiPost(b.t, p, "cust-b", `{"type":"customer.registered","data":{"name":"Bob","email":"bob@example.com"}}`, http.StatusCreated)
		b.wait("a customer registered by POST in the list, in id order", `[...document.querySelectorAll('#customer-list li')].map(li => li.dataset.id).join() === 'cust-a,cust-b'`)
	})

	b.sub(t, "2 rejections from other clients appear live", func() {
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/cust-a"))
		b.wait("the customer, live", `document.getElementById('customer-id').textContent === 'cust-a' && document.getElementById('live').textContent === 'Live'`)
		uiPost(b.t, p, "cust-a", `{"id":"con-reject-1","type":"customer.registered","data":{"name":"Again","email":"again@example.com"}}`, http.StatusUnprocessableEntity)
		b.wait("the rejection in the timeline without a reload", `document.querySelector('#timeline li.rejected[data-event-id="con-reject-1"]') !== null && `+
			`document.getElementById('timeline-count').textContent.includes('1 rejected')`)
	})

	b.sub(t, "3 choosing a customer at 390 px shows it", func() {
		b.do(chromedp.EmulateViewport(390, 844))
		defer b.do(chromedp.EmulateViewport(1280, 900))
		b.do(chromedp.Navigate(p.client.Base+"/#/customers"), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		b.wait("the list", `document.querySelector('#customer-list li[data-id="cust-b"]') !== null`)
		b.do(chromedp.Click(chromedp.CSS(`#customer-list li[data-id="cust-b"] a`)))
		b.wait("the customer at the top of the screen", `document.getElementById('customer-id').textContent === 'cust-b' && `+
			`(() => { const r = document.getElementById('customer').getBoundingClientRect(); return r.top > -5 && r.top < innerHeight / 3 })()`)
	})

	b.sub(t, "4 an invalid If-Match is reported", func() {
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/cust-b"))
		b.wait("the customer", `document.getElementById('customer-id').textContent === 'cust-b'`)
		b.do(chromedp.SetValue(chromedp.ID("append-data"), `{"name": "Bobby"}`), chromedp.Click(chromedp.CSS(`#append-form button[type=submit]`)))
		b.wait("201 shown", `document.getElementById('append-result').dataset.status === '201'`)
		b.do(uiClear("append-ifmatch"), chromedp.SendKeys(chromedp.ID("append-ifmatch"), "1.5"), chromedp.Click(chromedp.CSS(`#append-form button[type=submit]`)))
		b.wait("the If-Match error, and no stale 201", `document.getElementById('append-ifmatch-error').textContent.includes('whole number') && `+
			`document.getElementById('append-result').hidden`)
	})

	b.sub(t, "5 an unreadable version says so", func() {
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/cust-b/versions/1"))
		b.wait("version 1", `document.getElementById('state-title').textContent === 'State as of version 1'`)
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/cust-b/versions/99"))
		b.wait("no state shown for version 99", `document.getElementById('state-title').textContent === 'Version 99 cannot be shown' && `+
			`document.querySelectorAll('#state dd').length === 0 && document.getElementById('asof-label').textContent.includes('no version 99')`)
		b.do(chromedp.Navigate(p.client.Base+"/#/customers/cust-a"), chromedp.Reload())
		b.wait("cust-a", `document.getElementById('customer-id').textContent === 'cust-a'`)
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/cust-b/versions/99"))
		b.wait("no current-state title for version 99 of another customer", `document.getElementById('customer-id').textContent === 'cust-b' && `+
			`document.getElementById('state-title').textContent === 'Version 99 cannot be shown' && document.querySelectorAll('#state dd').length === 0`)
	})

	b.sub(t, "8 messages are written for users", func() {
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/bad%20id"))
		b.wait("the id rule, in words", `document.getElementById('lookup-error').textContent.includes('letters, digits')`)
		if text := uiEval[string](b, `document.getElementById('lookup-error').textContent`); strings.Contains(text, "malformed") {
			b.t.Errorf("lookup error %q names the internal error", text)
		}
		_, body := authDo(b.t, p, http.MethodGet, "/customers/bad%20id", "", nil)
		if strings.Contains(string(body), "malformed event") {
			b.t.Errorf("GET /customers/bad%%20id: %s names the internal error", body)
		}
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/cust-a"))
		b.wait("cust-a", `document.getElementById('customer-id').textContent === 'cust-a'`)
		b.do(chromedp.SetValue(chromedp.ID("append-type"), "customer.email_changed"),
			chromedp.SetValue(chromedp.ID("append-data"), `{"email": 5}`), uiClear("append-ifmatch"),
			chromedp.Click(chromedp.CSS(`#append-form button[type=submit]`)))
		b.wait("the wrong type, in words", `document.getElementById('append-result').dataset.status === '400' && `+
			`document.getElementById('append-result').textContent.includes('email must be a string, not a number')`)
		if text := uiEval[string](b, `document.getElementById('append-result').textContent`); strings.Contains(text, "Go struct") || strings.Contains(text, "json:") {
			b.t.Errorf("append result %q names Go's decoder", text)
		}
	})

	b.sub(t, "9 the append form follows the customer", func() {
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/cust-a"))
		b.wait("cust-a", `document.getElementById('customer-id').textContent === 'cust-a'`)
		b.do(chromedp.SetValue(chromedp.ID("append-type"), "customer.email_changed"))
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/cust-b"))
		b.wait("the default type and cust-b's name", `document.getElementById('customer-id').textContent === 'cust-b' && `+
			`document.getElementById('append-type').value === 'customer.renamed' && JSON.parse(document.getElementById('append-data').value).name === 'Bobby'`)
		p.produce(b.t, uiRecord(binEvent("con-rename-b", "cust-b", "customer.renamed", "2026-03-01T01:00:00Z", `{"name":"Robert"}`)))
		b.wait("the template after the live change", `document.getElementById('customer-version').textContent === '3' && JSON.parse(document.getElementById('append-data').value).name === 'Robert'`)
		uiPost(b.t, p, "cust-b", `{"type":"customer.erased"}`, http.StatusCreated)
		b.wait("no event offered on an erased customer", `document.getElementById('customer-status').textContent === 'erased' && `+
			`[...document.getElementById('append-type').options].every(o => o.disabled) && document.querySelector('#append-form button[type=submit]').disabled`)
	})

	b.sub(t, "7 goka's pages lead back", func() {
		b.do(chromedp.Navigate(p.client.Base + "/goka/monitor/"))
		b.wait("a title and a way back", `document.title.includes('eventfold') && document.querySelector('a.eventfold-back[href="../../"]') !== null`)
		b.wait("the lag explained", `document.getElementById('eventfold-note').textContent.includes('offset lag 1')`)
	})

	b.sub(t, "6 the totals survive a restart", func() {
		// A second instance of the service, in the same group: its process
		// counters start at zero, while the log and the table hold 5
		// accepted events (cust-a 1, cust-b 4) and 6 decided records.
		p2 := startPipelineOn(t, p.broker, p.topics)
		b.base = p2.client.Base
		defer func() { b.base = p.client.Base }()
		b.do(chromedp.Navigate(p2.client.Base + "/#/operations"))
		b.wait("the accepted total from the table", `document.getElementById('ops-folded-total').textContent === '5'`)
		b.wait("the decided total from the committed offsets", `document.getElementById('ops-decided-total').textContent === '6'`)
	})
	b.checkClean()
}

// sub runs f as a subtest whose failures stop it alone.
func (b *uiBrowser) sub(t *testing.T, name string, f func()) {
	t.Helper()
	t.Run(name, func(st *testing.T) {
		parent := b.t
		b.t = st
		defer func() { b.t = parent }()
		f()
	})
}

// uiPost posts an event and requires the status want.
func uiPost(t *testing.T, p *pipeline, id, event string, want int) []byte {
	t.Helper()
	status, body := authPost(t, p, id, event, "")
	if status != want {
		t.Fatalf("POST /customers/%s/events %s: %d %s, want %d", id, event, status, body, want)
	}
	return body
}

// TestUIConsoleSearch finds customers by id prefix, name or email and by
// status, through GET /customers?q=&status=, live, at 1280 and 390 px.
func TestUIConsoleSearch(t *testing.T) {
	chromium := uiChromium(t)
	p := startPipeline(t)
	p.produce(t,
		uiRecord(binEvent("s-1", "cust-ada", "customer.registered", "2026-03-01T00:00:00Z", `{"name":"Ada Lovelace","email":"ada@example.com"}`)),
		uiRecord(binEvent("s-2", "cust-bob", "customer.registered", "2026-03-01T00:00:00Z", `{"name":"Bob","email":"bob@lovelace.org"}`)),
		uiRecord(binEvent("s-3", "cust-cy", "customer.registered", "2026-03-01T00:00:00Z", `{"name":"Cy","email":"cy@example.com"}`)),
		uiRecord(binEvent("s-4", "cust-cy", "customer.suspended", "2026-03-01T00:01:00Z", `{"reason":"fraud"}`)),
		uiRecord(binEvent("s-5", "other-1", "customer.registered", "2026-03-01T00:00:00Z", `{"name":"Dee","email":"dee@example.com"}`)))
	b := uiOpen(t, chromium, p.client.Base)
	listed := `[...document.querySelectorAll('#customer-list li')].map(li => li.dataset.id).join()`
	for _, width := range []int64{1280, 390} {
		b.sub(t, fmt.Sprint(width), func() {
			b.do(chromedp.EmulateViewport(width, 844), chromedp.Navigate(p.client.Base+"/"))
			b.wait("every customer", listed+`.startsWith('cust-ada,cust-bob,cust-cy') && `+listed+`.includes('other-1')`)
			b.do(chromedp.SendKeys(chromedp.ID("list-q"), "LOVELACE"))
			b.wait("a name or an email that contains it, ignoring case", listed+` === 'cust-ada,cust-bob'`)
			b.do(uiClear("list-q"), chromedp.SendKeys(chromedp.ID("list-q"), "other"))
			b.wait("an id that starts with it", listed+` === 'other-1'`)
			b.do(uiClear("list-q"), chromedp.SetValue(chromedp.ID("list-filter"), "suspended"))
			b.wait("a status", listed+` === 'cust-cy'`)
			b.do(chromedp.SetValue(chromedp.ID("list-filter"), ""), chromedp.SendKeys(chromedp.ID("list-q"), "cust-"))
			b.wait("the prefix", listed+`.startsWith('cust-ada,cust-bob,cust-cy') && !`+listed+`.includes('other-1') && !`+listed+`.includes('zz-')`)
			id := fmt.Sprintf("cust-new-%d", width)
			uiPost(b.t, p, id, `{"type":"customer.registered","data":{"name":"New","email":"new@example.com"}}`, http.StatusCreated)
			uiPost(b.t, p, "zz-"+fmt.Sprint(width), `{"type":"customer.registered","data":{"name":"Zed","email":"zed@example.com"}}`, http.StatusCreated)
			b.wait("a new match live, and no new customer that does not match", `[...document.querySelectorAll('#customer-list li')].map(li => li.dataset.id).includes(`+uiJS(id)+`) && `+
				`![...document.querySelectorAll('#customer-list li')].some(li => li.dataset.id.startsWith('zz-'))`)
			b.wait("no horizontal scroll", uiNoHorizontalScroll)
		})
	}
	b.do(chromedp.EmulateViewport(1280, 900))
	status, body := authDo(t, p, http.MethodGet, "/customers?status=gone", "", nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_parameter") {
		t.Errorf("GET /customers?status=gone: %d %s, want 400 invalid_parameter", status, body)
	}
	b.checkClean()
}

// TestUIReadmeScreenshots takes the README's screenshots of the page with
// the sample events: the landing page, a customer, operations and the
// dead letters, at 1280 px and 390 px. It writes into docs/screenshots,
// so it runs only when EVENTFOLD_README_SCREENSHOTS=1.
func TestUIReadmeScreenshots(t *testing.T) {
	if os.Getenv("EVENTFOLD_README_SCREENSHOTS") != "1" {
		t.Skip("set EVENTFOLD_README_SCREENSHOTS=1 to write docs/screenshots")
	}
	chromium := uiChromium(t)
	p := startPipeline(t)
	p.produceAndAwaitFold(t, testkit.ReadLines(t, testkit.SampleFile(t)), 60*time.Second)
	p.produce(t, &kgo.Record{Key: []byte(uiCustomer), Value: []byte(`{"specversion":"1.0","id":"cut-short`)})
	b := uiOpen(t, chromium, p.client.Base)
	b.shots = filepath.Join(testkit.RepoRoot(t), "docs", "screenshots")
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, width := range []int64{1280, 390} {
		b.do(chromedp.EmulateViewport(width, map[int64]int64{1280: 800, 390: 844}[width]))
		b.do(chromedp.Navigate(p.client.Base+"/"), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		b.wait("the list", `document.querySelectorAll('#customer-list li').length >= 20 && document.getElementById('readiness').textContent === 'Ready'`)
		b.shot(fmt.Sprintf("landing-%d", width))
		b.do(chromedp.Navigate(p.client.Base + "/#/customers/" + uiCustomer))
		b.wait("the customer", `document.getElementById('live').textContent === 'Live' && document.querySelectorAll('#timeline li.rejected').length > 0`)
		b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('customer').scrollIntoView()`))
		b.shot(fmt.Sprintf("customer-%d", width))
		b.do(chromedp.Navigate(p.client.Base + "/#/operations"))
		b.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		b.wait("the operations", `document.getElementById('ops-ready').textContent === 'Ready' && /^[0-9,]+$/.test(document.getElementById('ops-decided-total').textContent) && document.querySelectorAll('#ops-dlq li').length > 0`)
		b.shot(fmt.Sprintf("operations-%d", width))
		b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('dlq-title').scrollIntoView(); document.querySelector('#ops-dlq details').open = true`))
		b.shot(fmt.Sprintf("dead-letters-%d", width))
	}
}
