package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestUIConsoleDecisions: every decision is visible on the page, also for
// an id that was never registered (its rejections, each with the type it
// attempted; their data is read only when an entry is opened:
// TestUIConsoleAttemptedData), live; and such an id, or one never seen, is
// registered from the page. At 1280 and 390 px.
func TestUIConsoleDecisions(t *testing.T) {
	chromium := uiChromium(t)
	p := startPipeline(t)
	b := uiOpen(t, chromium, p.client.Base)
	rejected := `[...document.querySelectorAll('#timeline li.rejected')]`
	for _, width := range []int64{1280, 390} {
		b.sub(t, fmt.Sprint(width), func() {
			ghost := fmt.Sprintf("ghost-%d", width)
			uiPost(b.t, p, ghost, `{"type":"customer.renamed","data":{"name":"Secret Name"}}`, http.StatusUnprocessableEntity)
			uiPost(b.t, p, ghost, `{"type":"customer.email_changed","data":{"email":"secret@example.com"}}`, http.StatusUnprocessableEntity)
			b.do(chromedp.EmulateViewport(width, 844), chromedp.Navigate(p.client.Base+"/#/customers/"+ghost))
			b.wait("the rejections of an id never registered, with what they attempted",
				`document.getElementById('lookup-error').textContent.includes('2 of its events were rejected') && `+
					rejected+`.map(li => li.dataset.type + ':' + li.dataset.reason).join() === 'customer.email_changed:not_registered,customer.renamed:not_registered' && `+
					rejected+`.every(li => /offset \d+/.test(li.textContent))`)
			if text := uiEval[string](b, `document.getElementById('timeline').textContent`); strings.Contains(text, "Secret Name") || strings.Contains(text, "secret@") {
				b.t.Errorf("the timeline shows the attempted personal data before an entry is opened: %q", text)
			}
			b.wait("only a registration offered", `document.getElementById('append-type').value === 'customer.registered' && `+
				`[...document.getElementById('append-type').options].filter(o => !o.disabled).map(o => o.value).join() === 'customer.registered'`)
			uiPost(b.t, p, ghost, `{"type":"customer.suspended","data":{"reason":"x"}}`, http.StatusUnprocessableEntity)
			b.wait("a new rejection, live", rejected+`.length === 3 && `+rejected+`[0].dataset.type === 'customer.suspended'`)

			b.do(chromedp.SetValue(chromedp.ID("append-data"), `{"name": "Ghost", "email": "ghost@example.com"}`),
				chromedp.Click(chromedp.CSS(`#append-form button[type=submit]`)))
			b.wait("registered from the page", `document.getElementById('append-result').dataset.status === '201' && `+
				`document.getElementById('customer-version').textContent === '1' && document.getElementById('customer-status').textContent === 'active' && `+
				`document.getElementById('lookup-error').textContent === '' && document.getElementById('append-type').value === 'customer.renamed' && `+
				rejected+`.length === 3`)

			fresh := fmt.Sprintf("fresh-%d", width)
			b.do(chromedp.Navigate(p.client.Base + "/#/customers/" + fresh))
			b.wait("an id never seen, offered its registration", `document.getElementById('customer-id').textContent === `+uiJS(fresh)+` && `+
				`document.getElementById('lookup-error').textContent.includes('register it with the form below') && `+
				`document.getElementById('append-type').value === 'customer.registered' && JSON.parse(document.getElementById('append-data').value).name === ''`)
			b.do(chromedp.SetValue(chromedp.ID("append-data"), `{"name": "Fresh", "email": "fresh@example.com"}`),
				chromedp.Click(chromedp.CSS(`#append-form button[type=submit]`)))
			b.wait("registered, and in the list", `document.getElementById('customer-version').textContent === '1' && `+
				`document.querySelector('#customer-list li[data-id=`+uiJS(fresh)+`]') !== null`)
			b.wait("no horizontal scroll", uiNoHorizontalScroll)
		})
	}
	b.do(chromedp.EmulateViewport(1280, 900))
	b.checkClean()
}
