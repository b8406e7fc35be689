package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestUIConsoleAttemptedData: a rejected entry of the timeline shows what
// the event attempted, its type and its data, read back from the log when
// the entry is opened; for a rejection that arrives live after the page
// loaded too, and for an id that was never registered. At 1280 and 390 px.
func TestUIConsoleAttemptedData(t *testing.T) {
	chromium := uiChromium(t)
	p := startPipeline(t)
	b := uiOpen(t, chromium, p.client.Base)
	for _, width := range []int64{1280, 390} {
		b.sub(t, fmt.Sprint(width), func() {
			id, ghost := fmt.Sprintf("attempt-%d", width), fmt.Sprintf("attempt-ghost-%d", width)
			uiPost(b.t, p, id, `{"type":"customer.registered","data":{"name":"Ada","email":"ada@example.com"}}`, http.StatusCreated)
			early, live := fmt.Sprintf("early-%d", width), fmt.Sprintf("live-%d", width)
			uiPost(b.t, p, id, `{"id":"`+early+`","type":"customer.registered","data":{"name":"Early Attempt","email":"early@example.com"}}`,
				http.StatusUnprocessableEntity)
			b.do(chromedp.EmulateViewport(width, 844), chromedp.Navigate(p.client.Base+"/#/customers/"+id))
			entry := func(eventID string) string { return `#timeline li.rejected[data-event-id="` + eventID + `"]` }
			body := func(eventID string) string {
				return `document.querySelector('` + entry(eventID) + ` .tl-attempt-body')`
			}
			b.wait("the rejected entry, its data not yet read", body(early)+` !== null && `+body(early)+`.textContent === ''`)
			b.do(chromedp.Click(chromedp.CSS(entry(early) + ` summary`)))
			b.wait("the attempted data, opened", body(early)+`.dataset.state === 'done' && `+
				body(early)+`.textContent.includes('name: Early Attempt') && `+body(early)+`.textContent.includes('email: early@example.com')`)

			uiPost(b.t, p, id, `{"id":"`+live+`","type":"customer.suspended","data":{"reason":"Live Reason"}, "expectedversion": 7}`,
				http.StatusConflict)
			b.wait("a live rejection", `document.querySelector('`+entry(live)+`') !== null && `+
				`document.querySelector('`+entry(live)+`').dataset.type === 'customer.suspended'`)
			b.wait("the earlier entry stays open", body(early)+`.textContent.includes('name: Early Attempt')`)
			b.do(chromedp.Click(chromedp.CSS(entry(live) + ` summary`)))
			b.wait("the live rejection's attempted data", body(live)+`.dataset.state === 'done' && `+body(live)+`.textContent.includes('reason: Live Reason')`)
			b.wait("no horizontal scroll", uiNoHorizontalScroll)

			never := fmt.Sprintf("never-%d", width)
			uiPost(b.t, p, ghost, `{"id":"`+never+`","type":"customer.renamed","data":{"name":"Ghost Attempt"}}`, http.StatusUnprocessableEntity)
			b.do(chromedp.Navigate(p.client.Base + "/#/customers/" + ghost))
			b.wait("the entry of an id never registered", `document.querySelector('`+entry(never)+`') !== null`)
			b.do(chromedp.Click(chromedp.CSS(entry(never) + ` summary`)))
			b.wait("its attempted data", body(never)+`.dataset.state === 'done' && `+body(never)+`.textContent.includes('name: Ghost Attempt')`)
			b.wait("no horizontal scroll", uiNoHorizontalScroll)
		})
	}
	b.do(chromedp.EmulateViewport(1280, 900))
	b.checkClean()
}
