package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestUIConsoleDiffAndTime: the changes between two versions of a
// customer, and its state as of a date and time chosen in a picker. At
// 1280 and 390 px.
func TestUIConsoleDiffAndTime(t *testing.T) {
	chromium := uiChromium(t)
	p := startPipeline(t)
	b := uiOpen(t, chromium, p.client.Base)
	diffFields := `[...document.querySelectorAll('#diff-list .diff-row')].map(r => r.dataset.field).join()`
	for _, width := range []int64{1280, 390} {
		b.sub(t, fmt.Sprint(width), func() {
			id := fmt.Sprintf("hist-%d", width)
			p.produce(b.t,
				uiRecord(binEvent(id+"-1", id, "customer.registered", "2026-03-01T00:00:00Z", `{"name":"Ada","email":"ada@example.com"}`)),
				uiRecord(binEvent(id+"-2", id, "customer.renamed", "2026-03-02T00:00:00Z", `{"name":"Bea"}`)),
				uiRecord(binEvent(id+"-3", id, "customer.email_changed", "2026-03-03T00:00:00Z", `{"email":"cy@example.com"}`)))
			b.do(chromedp.EmulateViewport(width, 844), chromedp.Navigate(p.client.Base+"/#/customers/"+id+"/versions/3"))
			b.wait("the changes since version 2", `document.getElementById('state-title').textContent === 'State as of version 3' && `+
				diffFields+` === 'email,version,updated,last-event' && document.querySelector('#diff-list [data-field=email]').textContent.includes('ada@example.com → cy@example.com')`)
			b.do(chromedp.Evaluate[chromedp.Void](`(() => { const f = document.getElementById('diff-from'); f.value = '1'; f.dispatchEvent(new Event('change')) })()`))
			b.wait("the changes since version 1", diffFields+` === 'name,email,version,updated,last-event'`)
			b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('at-input').value = '2026-03-02T12:00:00'`), chromedp.Click(chromedp.CSS(`#at-form button[type=submit]`)))
			b.wait("the state at noon on 2 March", `document.getElementById('state-title').textContent.startsWith('State as of 2026-03-02') && `+
				uiField("name")+` === 'Bea' && document.querySelector('#state [data-field=email]').textContent === 'ada@example.com'`)
			b.do(chromedp.Evaluate[chromedp.Void](`document.getElementById('at-input').value = '2026-02-01T00:00:00'`), chromedp.Click(chromedp.CSS(`#at-form button[type=submit]`)))
			b.wait("no state before the registration", `document.getElementById('state-title').textContent.startsWith('No state as of') && `+
				`document.getElementById('asof-label').textContent.includes('did not exist')`)
			b.wait("no horizontal scroll", uiNoHorizontalScroll)
		})
	}
	b.do(chromedp.EmulateViewport(1280, 900))
	b.checkClean()
}
