package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/eventfold/eventfold/processor"
)

// maxMergedPageBytes bounds the body read from one owner's page: a page
// holds at most views.MaxListBytes of stored state, which its JSON does
// not double.
const maxMergedPageBytes = 16 << 20

// listed is one customer of an owner's page, as that owner wrote it.
type listed struct {
	id   string
	body json.RawMessage
}

// ownerPage is one owner's answer to GET /customers.
type ownerPage struct {
	entries []listed
	next    string
	err     error
}

// mergedPage is the body of GET /customers when the instances split the
// table: the customers as each owner wrote them.
type mergedPage struct {
	Customers []json.RawMessage `json:"customers"`
	Next      string            `json:"next,omitempty"`
}

// listMerged answers GET /customers from every owner's page. Each owner
// has looked at every id of its own up to its next (or at all of them
// when it has none), so the merged page is the customers up to the
// smallest next, in id order, cut at limit: no id of any owner below the
// merged next is skipped.
func (s *Server) listMerged(w http.ResponseWriter, r *http.Request, after string, limit int, match func(*processor.Customer) bool) {
	owners, complete := s.forward.router.Instances()
	if !complete || len(owners) == 0 {
		s.forward.results.WithLabelValues("no_owner").Inc()
		unavailable(w, "rebalancing", "some partitions have no owner right now (a rebalance); retry")
		return
	}
	pages := make([]ownerPage, len(owners))
	var wg sync.WaitGroup
	for i, owner := range owners {
		wg.Go(func() {
			if owner == s.AdvertisedURL() {
				pages[i] = s.localPage(after, limit, match)
				return
			}
			pages[i] = s.remotePage(r, owner)
		})
	}
	wg.Wait()
	bound := ""
	var all []listed
	for _, p := range pages {
		if p.err != nil {
			s.forward.router.Poke()
			s.log.Warn("an owner's page of the customer list failed", "error", p.err)
			unavailable(w, "owner_unavailable", "an instance that owns part of the list did not answer; retry")
			return
		}
		if p.next != "" && (bound == "" || p.next < bound) {
			bound = p.next
		}
		all = append(all, p.entries...)
	}
	all = slices.DeleteFunc(all, func(e listed) bool { return bound != "" && e.id > bound })
	slices.SortFunc(all, func(a, b listed) int { return strings.Compare(a.id, b.id) })
	next := bound
	if len(all) > limit {
		all, next = all[:limit], all[limit-1].id
	}
	page := mergedPage{Customers: make([]json.RawMessage, len(all)), Next: next}
	for i, e := range all {
		page.Customers[i] = e.body
	}
	writeJSON(w, http.StatusOK, page)
}

// localPage is this instance's page of its own partitions.
func (s *Server) localPage(after string, limit int, match func(*processor.Customer) bool) ownerPage {
	if !s.lookups.Recovered() {
		return ownerPage{err: fmt.Errorf("this instance is not ready")}
	}
	customers, next, err := s.lookups.List(after, limit, match)
	if err != nil {
		return ownerPage{err: err}
	}
	page := ownerPage{next: next, entries: make([]listed, len(customers))}
	for i, c := range customers {
		page.entries[i] = listed{id: c.ID, body: s.public(c).AppendJSON(nil)}
	}
	return page
}

// remotePage asks owner for its page of the same query, as a forwarded
// request with the client's token.
func (s *Server) remotePage(r *http.Request, owner string) ownerPage {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, owner+"/customers?"+r.URL.RawQuery, nil)
	if err != nil {
		return ownerPage{err: fmt.Errorf("failed to build the request to %s: %w", owner, err)}
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set(HeaderForwarded, s.AdvertisedURL())
	resp, err := s.forward.client.Do(req)
	if err != nil {
		s.forward.results.WithLabelValues("failed").Inc()
		return ownerPage{err: fmt.Errorf("failed to ask %s: %w", owner, err)}
	}
	defer resp.Body.Close()
	s.forward.results.WithLabelValues("forwarded").Inc()
	if resp.StatusCode != http.StatusOK {
		return ownerPage{err: fmt.Errorf("%s answered %s", owner, resp.Status)}
	}
	var body struct {
		Customers []json.RawMessage `json:"customers"`
		Next      string            `json:"next"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMergedPageBytes)).Decode(&body); err != nil {
		return ownerPage{err: fmt.Errorf("failed to read the page of %s: %w", owner, err)}
	}
	page := ownerPage{next: body.Next, entries: make([]listed, len(body.Customers))}
	for i, c := range body.Customers {
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(c, &head); err != nil {
			return ownerPage{err: fmt.Errorf("failed to read a customer of %s: %w", owner, err)}
		}
		page.entries[i] = listed{id: head.ID, body: c}
	}
	return page
}
