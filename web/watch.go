package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/eventfold/eventfold/processor"
	"github.com/eventfold/eventfold/views"
)

// Subscriber hands out subscriptions to table changes: a views.Hub.
type Subscriber interface {
	Subscribe(key string, buffer int) *views.Subscription
}

// watchBuffer is how many changes a watcher may fall behind before it is
// dropped: a slow client must not slow the view down.
const watchBuffer = 4096

// watchCustomer streams GET /customers/{id}/watch: the current state, then
// one "state" event per accepted change of that customer.
func (s *Server) watchCustomer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !checkID(w, id) {
		return
	}
	s.watch(w, r, id)
}

// watchAll streams GET /watch: one "state" event per accepted change of
// any customer.
func (s *Server) watchAll(w http.ResponseWriter, r *http.Request) { s.watch(w, r, "") }

func (s *Server) watch(w http.ResponseWriter, r *http.Request, id string) {
	if s.subscriber == nil {
		writeError(w, http.StatusNotImplemented, "no_watch", "this server does not stream changes")
		return
	}
	if r.Method == http.MethodHead {
		// HEAD learns that the stream exists without holding a slot.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	if !s.lookups.Recovered() {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "the view is still recovering the table")
		return
	}
	release, ok := s.admit(w, r, s.watchers)
	if !ok {
		return
	}
	defer release()

	// Subscribe before reading the current state, so no change is lost
	// between the two; versions already sent are skipped.
	sub := s.subscriber.Subscribe(id, watchBuffer)
	defer sub.Close()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var sent int64
	if id != "" {
		c, err := s.lookups.Lookup(id)
		if err == nil && c != nil {
			if s.sendState(w, rc, c) != nil {
				return
			}
			sent = c.Version
		}
	}
	if err := s.flush(rc); err != nil {
		return
	}
	heartbeat := time.NewTicker(s.cfg.WatchHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-heartbeat.C:
			if err := s.writeSSE(w, rc, ": heartbeat\n\n"); err != nil {
				return
			}
		case change, ok := <-sub.C():
			if !ok {
				// Dropped for falling behind: end the stream; the client
				// reconnects and starts from the current state.
				return
			}
			c, err := processor.DecodeCustomer(change.Value)
			if err != nil {
				continue
			}
			if id != "" && lastRejected(c) {
				// A customer's stream carries its rejections too, so that
				// a page sees every decision, including those of ids never
				// registered; GET /watch stays the feed of state changes.
				if s.sendEvent(w, rc, "rejected", c) != nil {
					return
				}
				continue
			}
			if !changedState(c) || (id != "" && c.Version <= sent) {
				continue
			}
			if s.sendState(w, rc, c) != nil {
				return
			}
			sent = c.Version
		}
	}
}

// changedState reports whether the table write that produced c was an
// accepted event: rejections rewrite the entry without changing state.
func changedState(c *processor.Customer) bool {
	if !c.Registered() || len(c.Decisions) == 0 {
		return false
	}
	last := c.Decisions[len(c.Decisions)-1]
	return last.Outcome == processor.Accepted && last.Version == c.Version
}

// lastRejected reports whether the table write that produced c was a
// rejection: its last decision is a rejected one.
func lastRejected(c *processor.Customer) bool {
	return len(c.Decisions) > 0 && c.Decisions[len(c.Decisions)-1].Outcome == processor.Rejected
}

func (s *Server) sendState(w http.ResponseWriter, rc *http.ResponseController, c *processor.Customer) error {
	return s.sendEvent(w, rc, "state", c)
}

// sendEvent sends c as an event of the given name: "state" for an
// accepted change, "rejected" for a rejection, whose id names the
// rejected event.
func (s *Server) sendEvent(w http.ResponseWriter, rc *http.ResponseController, event string, c *processor.Customer) error {
	data, err := json.Marshal(public(c))
	if err != nil {
		return fmt.Errorf("failed to encode state: %w", err)
	}
	id := c.ID + "@" + strconv.FormatInt(c.Version, 10)
	if event == "rejected" {
		id += "/" + c.Decisions[len(c.Decisions)-1].EventID
	}
	return s.writeSSE(w, rc, "event: "+event+"\nid: "+id+"\ndata: "+string(data)+"\n\n")
}

// writeSSE writes one frame under a deadline, so a client that stops
// reading is dropped instead of holding a goroutine forever.
func (s *Server) writeSSE(w http.ResponseWriter, rc *http.ResponseController, frame string) error {
	_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WatchWriteTimeout)) // unsupported writers just have no deadline
	if _, err := w.Write([]byte(frame)); err != nil {
		return err
	}
	return s.flush(rc)
}

func (s *Server) flush(rc *http.ResponseController) error {
	return rc.Flush()
}
