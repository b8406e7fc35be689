package crash

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/web"
)

// Service reads one eventfold instance's HTTP API.
type Service struct {
	Base string // e.g. http://127.0.0.1:8080
	HTTP *http.Client
	// Owner, when set (partitioned mode), returns the advertised URL of
	// the instance that owns a customer: Check then wants every answer
	// named as served by it (web.HeaderServedBy), whichever instance was
	// asked, and counts the answers that were forwarded.
	Owner func(id string) string
}

// Customer returns the served state of id, nil for a 404.
func (s Service) Customer(id string) (*processor.Customer, error) {
	c, _, err := s.CustomerServed(id)
	return c, err
}

// CustomerServed returns the served state of id (nil for a 404) and the
// advertised URL of the instance that served it.
func (s Service) CustomerServed(id string) (*processor.Customer, string, error) {
	resp, err := s.HTTP.Get(s.Base + "/customers/" + id)
	if err != nil {
		return nil, "", fmt.Errorf("failed to get %s: %w", id, err)
	}
	defer resp.Body.Close()
	servedBy := resp.Header.Get(web.HeaderServedBy)
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return nil, servedBy, fmt.Errorf("failed to read %s: %w", id, err)
	case resp.StatusCode == http.StatusNotFound:
		return nil, servedBy, nil
	case resp.StatusCode != http.StatusOK:
		return nil, servedBy, fmt.Errorf("GET /customers/%s: %d %s", id, resp.StatusCode, body)
	}
	var c processor.Customer
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, servedBy, fmt.Errorf("failed to decode %s: %w", id, err)
	}
	return &c, servedBy, nil
}

// Check compares the served state of every customer of the fold with it,
// from workers goroutines, and the number of listed customers with the
// fold's registered ones.
func (s Service) Check(f Fold, workers int) *Tally {
	ids := make([]string, 0, len(f.States))
	for id := range f.States {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tally := NewTally()
	var mu sync.Mutex
	Each(ids, workers, func(id string) {
		got, servedBy, err := s.CustomerServed(id)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			tally.Add(id, Differs, err.Error())
			return
		}
		if s.Owner != nil {
			if owner := s.Owner(id); servedBy != owner {
				tally.Add(id, Differs, fmt.Sprintf("served by %q, its owner is %q", servedBy, owner))
				return
			}
			if servedBy != s.Base {
				tally.Forwarded++
			}
		}
		tally.Check(id, f.States[id], got, false)
	})
	switch listed, err := s.Listed(); {
	case err != nil:
		tally.Add("GET /customers", Differs, err.Error())
	case listed != f.Registered():
		tally.Add("GET /customers", Differs, fmt.Sprintf("lists %d customers, the fold registered %d", listed, f.Registered()))
	}
	return tally
}

// Listed pages through GET /customers and counts the customers.
func (s Service) Listed() (int, error) {
	n, after := 0, ""
	for {
		var page struct {
			Customers []json.RawMessage `json:"customers"`
			Next      string            `json:"next"`
		}
		if err := s.getJSON("/customers?limit=1000&after="+after, &page); err != nil {
			return 0, err
		}
		n += len(page.Customers)
		if page.Next == "" {
			return n, nil
		}
		after = page.Next
	}
}

// Events returns the ids of a customer's events from
// GET /customers/{id}/events, every page, checking that the versions
// follow each other from 1.
func (s Service) Events(id string) ([]string, error) {
	ids := []string{}
	for after := int64(0); ; {
		var page struct {
			Events []struct {
				Version int64 `json:"version"`
				Event   struct {
					ID string `json:"id"`
				} `json:"event"`
			} `json:"events"`
			NextAfterVersion int64 `json:"next_after_version"`
		}
		if err := s.getJSON(fmt.Sprintf("/customers/%s/events?limit=1000&after_version=%d", id, after), &page); err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			if e.Version != int64(len(ids))+1 {
				return nil, fmt.Errorf("%s: event %s listed as version %d after %d events", id, e.Event.ID, e.Version, len(ids))
			}
			ids = append(ids, e.Event.ID)
		}
		if page.NextAfterVersion == 0 {
			return ids, nil
		}
		after = page.NextAfterVersion
	}
}

// getJSON reads a JSON answer. A 429 (the server's bound on one client's
// concurrent history reads, which the checks' parallel readers can reach
// on a loaded machine) is retried, for up to 10 s: it says nothing of the
// state.
func (s Service) getJSON(path string, v any) error {
	resp, err := s.HTTP.Get(s.Base + path)
	for deadline := time.Now().Add(10 * time.Second); err == nil && resp.StatusCode == http.StatusTooManyRequests && time.Now().Before(deadline); {
		resp.Body.Close()
		time.Sleep(100 * time.Millisecond)
		resp, err = s.HTTP.Get(s.Base + path)
	}
	if err != nil {
		return fmt.Errorf("failed to get %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body) // only for the message
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("failed to decode GET %s: %w", path, err)
	}
	return nil
}

// Each calls f for every id, from n goroutines.
func Each(ids []string, n int, f func(string)) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for id := range work {
				f(id)
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
}
