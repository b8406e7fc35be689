package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Headers a replayed record carries, its audit trail in the log: which
// dead letter it replays and when. A record that is dead-lettered again
// keeps them among its original headers.
const (
	HeaderReplayedFrom = "eventfold.replayed_from" // <dead-letter topic>/<partition>@<offset>
	HeaderReplayedAt   = "eventfold.replayed_at"   // RFC 3339, UTC
)

// maxReplayBody bounds the body of a replay request, {"partition", "offset"}.
const maxReplayBody = 1024

// Replayer produces a record to the events topic, partitioned by key like
// every write: a kafka.Publisher.
type Replayer interface {
	PublishRecord(ctx context.Context, key string, value []byte, headers []sarama.RecordHeader) (int32, int64, error)
}

// replays serves POST /ui/api/dead-letters/replay: it produces a dead
// letter's original key, value and headers to the events topic again,
// for after the cause was fixed. The server's authorization makes it a
// write (a write token when tokens are set, no cross-origin browser page).
type replays struct {
	dl       *deadLetters
	replayer Replayer
	events   string
	replayed prometheus.Counter
}

func newReplays(dl *deadLetters, replayer Replayer, events string, reg prometheus.Registerer) (*replays, error) {
	r := &replays{dl: dl, replayer: replayer, events: events, replayed: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventfold_ui_dead_letters_replayed_total",
		Help: "Dead letters produced again to the events topic from the web page.",
	})}
	if reg != nil {
		if err := reg.Register(r.replayed); err != nil {
			return nil, fmt.Errorf("failed to register the replay counter: %w", err)
		}
	}
	return r, nil
}

// replayRequest names the dead letter to replay.
type replayRequest struct {
	Partition *int32 `json:"partition"`
	Offset    *int64 `json:"offset"`
}

// replayed is the answer: where the record landed and its audit headers.
type replayed struct {
	Key          string    `json:"key"`
	Topic        string    `json:"topic"`
	Partition    int32     `json:"partition"`
	Offset       int64     `json:"offset"`
	ReplayedFrom string    `json:"replayed_from"`
	ReplayedAt   time.Time `json:"replayed_at"`
}

func (rp *replays) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the dead letter as application/json: {\"partition\": 0, \"offset\": 12}")
		return
	}
	var req replayRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxReplayBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Partition == nil || req.Offset == nil || *req.Partition < 0 || *req.Offset < 0 {
		writeError(w, http.StatusBadRequest, "invalid_body", "the body names a dead letter: {\"partition\": 0, \"offset\": 12}, both non-negative integers")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), deadLetterTimeout)
	defer cancel()
	release, ok := rp.dl.acquire(ctx, w)
	if !ok {
		return
	}
	defer release()
	m, err := rp.dl.readOne(ctx, *req.Partition, *req.Offset)
	switch {
	case errors.Is(err, errNoDeadLetter):
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no dead letter at partition %d, offset %d of %s", *req.Partition, *req.Offset, rp.dl.topic))
		return
	case err != nil:
		rp.dl.log.Warn("failed to read a dead letter to replay", "topic", rp.dl.topic, "error", err)
		writeError(w, http.StatusServiceUnavailable, "kafka_unavailable", "the dead letter could not be read from Kafka; retry")
		return
	}
	if !toDeadLetter(m).Replayable {
		writeError(w, http.StatusConflict, "not_replayable", "this dead letter was cut to fit the dead-letter topic: its original key, value or headers are lost, so it cannot be produced again")
		return
	}
	out := replayed{Key: string(m.Key), Topic: rp.events, ReplayedFrom: rp.dl.topic + "/" + strconv.Itoa(int(m.Partition)) + "@" + strconv.FormatInt(m.Offset, 10),
		ReplayedAt: time.Now().UTC().Truncate(time.Millisecond)}
	headers := []sarama.RecordHeader{
		{Key: []byte(HeaderReplayedFrom), Value: []byte(out.ReplayedFrom)},
		{Key: []byte(HeaderReplayedAt), Value: []byte(out.ReplayedAt.Format(time.RFC3339Nano))},
	}
	for _, h := range m.HeaderList {
		// The processor's headers describe the failure, not the event; an
		// earlier replay's trail is replaced by this one.
		if h != nil && !strings.HasPrefix(string(h.Key), "eventfold.") {
			headers = append(headers, *h)
		}
	}
	if out.Partition, out.Offset, err = rp.replayer.PublishRecord(ctx, out.Key, m.Value, headers); err != nil {
		rp.dl.log.Warn("failed to replay a dead letter", "from", out.ReplayedFrom, "error", err)
		writeError(w, http.StatusServiceUnavailable, "kafka_unavailable", "the dead letter could not be produced again; retry")
		return
	}
	rp.replayed.Inc()
	rp.dl.log.Info("dead letter replayed", "from", out.ReplayedFrom, "key", out.Key, "topic", out.Topic,
		"partition", out.Partition, "offset", out.Offset, "at", out.ReplayedAt)
	writeJSON(w, http.StatusCreated, out)
}
