package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clients are the HTTP side of the load for one phase. Each phase builds
// its own transports and closes them, so that none of their goroutines
// outlives the phase.
type clients struct {
	cfg     Config
	tally   *tally
	http    *http.Client // requests, with a timeout
	stream  *http.Client // watch streams, bounded by their context
	readIDs []string     // customers the lookups and watchers pick from
}

func newClients(cfg Config, t *tally, readIDs []string) *clients {
	transport := func() *http.Transport {
		return &http.Transport{MaxIdleConnsPerHost: cfg.Lookups + cfg.Writers + cfg.Watchers + 1, IdleConnTimeout: time.Minute}
	}
	return &clients{cfg: cfg, tally: t, readIDs: readIDs,
		http:   &http.Client{Transport: transport(), Timeout: 30 * time.Second},
		stream: &http.Client{Transport: transport()}}
}

// close drops the idle connections, so that the server's side of them
// ends too.
func (c *clients) close() {
	c.http.CloseIdleConnections()
	c.stream.CloseIdleConnections()
}

// do sends one request and counts its answer; an answer outside ok is a
// failure. It returns the status and body, or 0 when ctx ended first.
func (c *clients) do(ctx context.Context, route, method, path string, header http.Header, body []byte, ok ...int) (int, http.Header, []byte) {
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		c.tally.failed("%s %s: %v", method, path, err)
		return 0, nil, nil
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.tally.failed("%s %s: %v", method, path, err)
		}
		return 0, nil, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() == nil {
			c.tally.failed("%s %s: reading the body: %v", method, path, err)
		}
		return 0, nil, nil
	}
	c.tally.answered(route, resp.StatusCode)
	if !slices.Contains(ok, resp.StatusCode) {
		c.tally.failed("%s %s: status %d: %.200s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, resp.Header, data
}

// lookup reads at a steady rate until ctx ends: states, waits for a
// version, histories, past versions, lists and metrics.
func (c *clients) lookup(ctx context.Context, rng *rand.Rand) {
	ticker := time.NewTicker(time.Second / time.Duration(c.cfg.LookupsPerSecond))
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		id := c.readIDs[rng.Intn(len(c.readIDs))]
		switch r := rng.Intn(20); {
		case r < 12:
			c.do(ctx, "GET /customers/{id}", "GET", "/customers/"+id, nil, nil, 200, 404)
		case r < 13:
			c.do(ctx, "GET /customers/{id}?min_version", "GET", "/customers/"+id+"?min_version=1&wait=500ms", nil, nil, 200, 504)
		case r < 15:
			c.do(ctx, "GET /customers/{id}/events", "GET", "/customers/"+id+"/events?limit=20", nil, nil, 200, 404)
		case r < 16:
			c.do(ctx, "GET /customers/{id}?version", "GET", "/customers/"+id+"?version=1", nil, nil, 200, 404)
		case r < 18:
			c.do(ctx, "GET /customers", "GET", "/customers?limit=50&after="+id, nil, nil, 200)
		default:
			c.do(ctx, "GET /metrics", "GET", "/metrics", nil, nil, 200)
		}
	}
}

// writer posts events to customers of its own, with If-Match, and keeps
// count of what the service said about each. Writers never share a
// customer, so a conflict can only follow a write whose outcome was left
// pending (202). One goroutine at a time uses a writer.
type writer struct {
	customers map[string]*written
	ids       []string
}

// written is what a writer knows of one of its customers.
type written struct {
	version   int64
	known     bool // version is current, unless a pending write lands
	uncertain bool // a write was left pending since the last 201
	// Accepted writes answered 201; Pending ones 202. The final version
	// lies between Accepted and Accepted+Pending.
	Accepted, Pending int64
}

func newWriter(seed int64, n, customers int) *writer {
	w := &writer{customers: map[string]*written{}}
	for i := range customers {
		id := fmt.Sprintf("soak-w%d-%02d-%03d", seed, n, i)
		w.ids = append(w.ids, id)
		w.customers[id] = &written{}
	}
	return w
}

// write posts one event after another until ctx ends.
func (c *clients) write(ctx context.Context, w *writer, rng *rand.Rand) {
	for n := 0; ctx.Err() == nil; n++ {
		id := w.ids[rng.Intn(len(w.ids))]
		cs := w.customers[id]
		if !cs.known && !c.readVersion(ctx, id, cs) {
			continue
		}
		body := fmt.Sprintf(`{"type":"customer.renamed","data":{"name":"Writer %d"}}`, n)
		if cs.version == 0 {
			body = fmt.Sprintf(`{"type":"customer.registered","data":{"name":"Writer %d","email":"w%d@example.com"}}`, n, n)
		} else if rng.Intn(2) == 0 {
			body = fmt.Sprintf(`{"type":"customer.email_changed","data":{"email":"w%d@example.org"}}`, n)
		}
		header := http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(cs.version, 10))}, "Content-Type": {"application/json"}}
		status, h, data := c.do(ctx, "POST /customers/{id}/events", "POST", "/customers/"+id+"/events", header, []byte(body), 201, 202, 409, 422)
		c.wrote(id, cs, status, h, data)
		select {
		case <-ctx.Done():
		case <-time.After(c.cfg.WriterPause):
		}
	}
}

// wrote updates what a writer knows from the answer to one write.
func (c *clients) wrote(id string, cs *written, status int, h http.Header, data []byte) {
	switch status {
	case 0: // the load stopped; the write may or may not have landed
		cs.Pending++
		cs.known, cs.uncertain = false, true
	case http.StatusCreated:
		v, err := strconv.ParseInt(strings.Trim(h.Get("ETag"), `"`), 10, 64)
		if err != nil {
			c.tally.failed("POST /customers/%s/events: 201 with ETag %q", id, h.Get("ETag"))
			cs.known = false
			return
		}
		cs.Accepted++
		cs.version, cs.known, cs.uncertain = v, true, false
	case http.StatusAccepted:
		cs.Pending++
		cs.known, cs.uncertain = false, true
	case http.StatusConflict, http.StatusUnprocessableEntity:
		if !cs.uncertain {
			c.tally.failed("POST /customers/%s/events: %d with no write pending: %.200s", id, status, data)
		}
		cs.known = false
	}
}

// readVersion learns a customer's current version from its state.
func (c *clients) readVersion(ctx context.Context, id string, cs *written) bool {
	status, _, data := c.do(ctx, "GET /customers/{id}", "GET", "/customers/"+id, nil, nil, 200, 404)
	switch status {
	case http.StatusOK:
		var st struct {
			Version int64 `json:"version"`
		}
		if err := json.Unmarshal(data, &st); err != nil {
			c.tally.failed("GET /customers/%s: %v", id, err)
			return false
		}
		cs.version, cs.known = st.Version, true
	case http.StatusNotFound:
		cs.version, cs.known = 0, true
	default:
		return false
	}
	return true
}

// watch opens change streams one after another until ctx ends: each is
// read for a random time up to WatchFor, then dropped. Within a stream,
// each customer's versions must rise.
func (c *clients) watch(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		path := "/watch"
		if rng.Intn(4) != 0 {
			path = "/customers/" + c.readIDs[rng.Intn(len(c.readIDs))] + "/watch"
		}
		d := time.Second + time.Duration(rng.Int63n(int64(c.cfg.WatchFor-time.Second)+1))
		wctx, cancel := context.WithTimeout(ctx, d)
		c.watchOnce(wctx, path)
		cancel()
	}
}

func (c *clients) watchOnce(ctx context.Context, path string) {
	route := "GET /watch"
	if path != "/watch" {
		route = "GET /customers/{id}/watch"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.cfg.BaseURL+path, nil)
	if err != nil {
		c.tally.failed("GET %s: %v", path, err)
		return
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.tally.failed("GET %s: %v", path, err)
		}
		return
	}
	defer resp.Body.Close()
	c.tally.answered(route, resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 200)) // for the message only
		c.tally.failed("GET %s: status %d: %s", path, resp.StatusCode, data)
		return
	}
	c.tally.watchConnections.Add(1)
	last := map[string]int64{}
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				c.tally.failed("GET %s: the stream ended: %v", path, err)
			}
			return
		}
		tag, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte("id: "))
		if !ok {
			continue
		}
		// A customer's stream also carries its rejections, with the id
		// <customer>@<version>/<rejected event id> at the current version.
		tag, rejectedID, rejection := bytes.Cut(tag, []byte("/"))
		at := bytes.LastIndexByte(tag, '@')
		v, err := strconv.ParseInt(string(tag[at+1:]), 10, 64)
		if at < 0 || err != nil || (rejection && len(rejectedID) == 0) {
			c.tally.failed("GET %s: event id %q is not <customer>@<version>[/<event id>]", path, tag)
			return
		}
		c.tally.watchEvents.Add(1)
		id := string(tag[:at])
		if rejection {
			if v < last[id] {
				c.tally.watchDisorder.Add(1)
				c.tally.failed("GET %s: %s rejection at version %d after version %d", path, id, v, last[id])
			}
			continue
		}
		if v <= last[id] {
			c.tally.watchDisorder.Add(1)
			c.tally.failed("GET %s: %s version %d after %d", path, id, v, last[id])
		}
		last[id] = v
	}
}
