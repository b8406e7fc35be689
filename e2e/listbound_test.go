package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
)

// listEvent is a structured-mode CloudEvent for customer key.
func listEvent(key, id, eventType, data string) *kgo.Record {
	value := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/list-test","type":%q,"data":%s}`, id, eventType, data)
	return &kgo.Record{Key: []byte(key), Value: []byte(value)}
}

// Anyone who may write can give ids that are never registered a table
// entry (their rejected decisions), as many as they like. A list page
// skips them, and before it was bounded it walked all of them to fill one
// page: one request could cost a scan of the whole table.
func TestListPageExaminesABoundedNumberOfEntries(t *testing.T) {
	t.Parallel()
	p := startPipeline(t)
	unregistered := views.MaxListScan + 2000
	if n := os.Getenv("EVENTFOLD_LIST_UNREGISTERED"); n != "" {
		unregistered, _ = strconv.Atoi(n)
	}
	records := make([]*kgo.Record, 0, unregistered+3)
	for i := range unregistered {
		// "a-" sorts before every registered id below.
		records = append(records, listEvent(fmt.Sprintf("a-%06d", i), fmt.Sprintf("spam-%d", i), processor.TypeRenamed, `{"name":"Nobody"}`))
	}
	registered := []string{"z-1", "z-2", "z-3"}
	for _, id := range registered {
		records = append(records, listEvent(id, "reg-"+id, processor.TypeRegistered, `{"name":"Real Customer","email":"real@example.com"}`))
	}
	p.produce(t, records...)
	deadline := time.Now().Add(60 * time.Second)
	for counterValue(t, p.reg, "eventfold_events_rejected_total", "reason", processor.ReasonNotRegistered) < float64(unregistered) {
		if time.Now().After(deadline) {
			t.Fatalf("the %d rejections were not folded in time", unregistered)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range registered {
		if status, _ := p.client.Customer(t, id, "?min_version=1&wait=20s"); status != http.StatusOK {
			t.Fatalf("registered customer %s: status %d", id, status)
		}
	}

	var listed []string
	after, pages := "", 0
	for ; ; pages++ {
		if pages > unregistered/views.MaxListScan+2 {
			t.Fatal("pagination does not end")
		}
		start := time.Now()
		page := p.listPage(t, after, 1000)
		t.Logf("page %d: %d customers in %s", pages, len(page.Customers), time.Since(start).Round(time.Microsecond))
		if pages == 0 && len(page.Customers) != 0 {
			t.Errorf("the first page holds %d customers found past %d unregistered entries; a page must stop after %d",
				len(page.Customers), unregistered, views.MaxListScan)
		}
		for _, c := range page.Customers {
			listed = append(listed, c.ID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if fmt.Sprint(listed) != fmt.Sprint(registered) {
		t.Errorf("listed %v over %d pages, want %v", listed, pages+1, registered)
	}
	if pages < 1 {
		t.Errorf("one page walked %d entries", unregistered+len(registered))
	}
}
