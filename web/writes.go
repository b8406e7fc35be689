package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/eventfold/eventfold/processor"
)

// Publisher appends an event to the events topic: a kafka.Publisher.
type Publisher interface {
	Publish(ctx context.Context, key string, value []byte) (partition int32, offset int64, err error)
}

// defaultWriteWait is how long a write waits for its decision by default.
const defaultWriteWait = 5 * time.Second

// writeSource is the CloudEvents source of events written over HTTP
// without one.
const writeSource = "/eventfold/http"

// pending is the 202 body of a write whose decision is not visible yet.
type pending struct {
	EventID   string `json:"event_id"`
	Status    string `json:"status"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// decided is the 200 body of a write whose event id was already decided.
type decided struct {
	processor.Decision
	Customer *processor.Customer `json:"customer,omitempty"`
}

// appendEvent handles POST /customers/{id}/events: it builds a CloudEvent,
// produces it, and waits until the fold's decision is visible in the view.
// The decision is taken by the fold, in the single writer that owns the
// partition, never here from a possibly stale view.
func (s *Server) appendEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !checkID(w, id) {
		return
	}
	if s.publisher == nil {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "read_only", "this server does not accept writes")
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send Content-Type: application/json (or application/cloudevents+json), in UTF-8")
		return
	}
	wait, err := s.parseWait(r.URL.Query().Get("wait"), defaultWriteWait)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", err.Error())
		return
	}
	body, err := s.readBody(w, r, processor.MaxEventBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("an event is at most %d bytes", processor.MaxEventBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "unreadable_body", "failed to read the request body")
		return
	}
	value, eventID, err := buildEvent(id, body, r.Header.Get("If-Match"), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	if !s.recovered(w) {
		return
	}
	// A retry of an event id that was already decided gets that decision
	// back and produces nothing.
	entry, err := s.lookups.Entry(id)
	if err != nil {
		// The write goes on: the fold decides a duplicate from its own
		// table, so a failed check costs a produce, not a double apply.
		s.log.Warn("failed to check for a duplicate event", "customer", id, "error", err)
	} else if entry != nil {
		if d, ok := entry.Decision(eventID); ok {
			body := decided{Decision: d}
			if entry.Registered() {
				body.Customer = s.public(entry)
			}
			writeJSON(w, http.StatusOK, body)
			return
		}
	}
	release, ok := s.admit(w, r, s.waiters)
	if !ok {
		return
	}
	defer release()
	value, ok = s.seal(w, r, id, value)
	if !ok {
		return
	}
	partition, offset, err := s.publisher.Publish(r.Context(), id, value)
	if err != nil {
		s.log.Warn("failed to produce an event", "customer", id, "error", err)
		writeError(w, http.StatusServiceUnavailable, "kafka_unavailable", "the event could not be produced; retry with the same event id")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	d, entry, err := s.lookups.WaitForDecision(ctx, id, eventID)
	if err != nil {
		w.Header().Set("Location", "/customers/"+id)
		writeJSON(w, http.StatusAccepted, pending{EventID: eventID, Status: "pending", Partition: partition, Offset: offset})
		return
	}
	switch {
	case d.Outcome == processor.Accepted:
		w.Header().Set("ETag", etag(d.Version))
		w.Header().Set("Location", "/customers/"+id)
		writeJSON(w, http.StatusCreated, s.public(entry))
	case d.Reason == processor.ReasonVersionConflict:
		version := d.Version
		writeJSON(w, http.StatusConflict, apiError{Error: d.Reason, Message: d.Message, Version: &version})
	default:
		writeError(w, http.StatusUnprocessableEntity, d.Reason, d.Message)
	}
}

// buildEvent turns a request body, either {"type", "data"} or a full
// CloudEvent, into the event to produce. It fills specversion, id, source
// and time, sets subject to the customer id and expectedversion from
// If-Match, and checks the result against the event contract.
func buildEvent(id string, body []byte, ifMatch string, now time.Time) ([]byte, string, error) {
	var attrs map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&attrs); err != nil || attrs == nil {
		return nil, "", errors.New("the body must be a JSON object: {\"type\": ..., \"data\": {...}} or a CloudEvent")
	}
	if dec.More() {
		return nil, "", errors.New("the body holds more than one JSON value")
	}
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	setDefault := func(name string, value json.RawMessage) {
		if _, ok := attrs[name]; !ok {
			attrs[name] = value
		}
	}
	setDefault("specversion", str("1.0"))
	setDefault("id", str(uuid.NewString()))
	setDefault("source", str(writeSource))
	setDefault("time", str(now.UTC().Format(time.RFC3339Nano)))
	if raw, ok := attrs["subject"]; ok {
		var subject string
		if err := json.Unmarshal(raw, &subject); err != nil || subject != id {
			return nil, "", fmt.Errorf("subject must be the customer id %q", id)
		}
	}
	attrs["subject"] = str(id)
	if ifMatch != "" {
		v, err := parseIfMatch(ifMatch)
		if err != nil {
			return nil, "", err
		}
		if raw, ok := attrs["expectedversion"]; ok && strings.Trim(string(raw), `" `) != strconv.FormatInt(v, 10) {
			return nil, "", errors.New("If-Match and expectedversion disagree")
		}
		attrs["expectedversion"] = json.RawMessage(strconv.FormatInt(v, 10))
	}
	value, err := json.Marshal(attrs)
	if err != nil {
		return nil, "", fmt.Errorf("failed to encode the event: %w", err)
	}
	ev, err := processor.Decode(id, value)
	if err != nil {
		return nil, "", err
	}
	return value, ev.ID, nil
}

// parseIfMatch reads the version of an If-Match header: "3", W/"3" or 3.
func parseIfMatch(h string) (int64, error) {
	tag := strings.TrimPrefix(strings.TrimSpace(h), "W/")
	tag = strings.Trim(tag, `"`)
	v, err := strconv.ParseInt(tag, 10, 64)
	if err != nil || v < 0 || strings.HasPrefix(tag, "+") || strings.HasPrefix(tag, "-") {
		return 0, fmt.Errorf("If-Match %q is not a version such as \"3\"", h)
	}
	return v, nil
}
