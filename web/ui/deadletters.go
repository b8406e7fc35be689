package ui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// Bounds of GET /ui/api/dead-letters. A dead letter can be 1 MiB, so the
// page gets a preview of each value, never the whole of it.
const (
	defaultDeadLetters = 20
	maxDeadLetters     = 100
	previewBytes       = 1024
	deadLetterTimeout  = 5 * time.Second
)

// deadLetter is one dead-letter record as the page shows it.
type deadLetter struct {
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Time      time.Time `json:"time"`
	Key       string    `json:"key"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	// Source is where the processor read the record: topic/partition@offset.
	Source string `json:"source,omitempty"`
	// Value is the start of the value as text; Binary says it is not
	// UTF-8 and was escaped.
	Value      string `json:"value"`
	ValueBytes int    `json:"value_bytes"`
	Binary     bool   `json:"binary,omitempty"`
	// TruncatedFrom is the original size of a value cut to fit the record.
	TruncatedFrom string `json:"truncated_from,omitempty"`
	// Headers are the original record's headers (eventfold's own are the
	// fields above), each value cut to 256 bytes.
	Headers map[string]string `json:"headers,omitempty"`
	// Replayable says the record holds its whole original key, value and
	// headers, so that replaying it produces the original record.
	Replayable bool `json:"replayable"`
}

// deadLetterPage is the body of GET /ui/api/dead-letters.
type deadLetterPage struct {
	Topic string `json:"topic"`
	// Total counts the records in the topic, on all partitions.
	Total int64 `json:"total"`
	// EventsTopic is where a replay produces to.
	EventsTopic string `json:"events_topic"`
	// Records are the latest ones, newest first.
	Records []deadLetter `json:"records"`
}

// filterScan is how many of the latest records of each partition a
// filtered read looks at: a filter finds matches among them, not in the
// whole topic.
const filterScan = 1000

// deadLetterFilter selects dead letters by reason and key, both exact;
// empty matches any.
type deadLetterFilter struct{ reason, key string }

func (f deadLetterFilter) empty() bool { return f.reason == "" && f.key == "" }

func (f deadLetterFilter) match(dl deadLetter) bool {
	return (f.reason == "" || dl.Reason == f.reason) && (f.key == "" || dl.Key == f.key)
}

// DeadLetterReader reads the records of the dead-letter topic: a
// kafka.OffsetReader of that topic (kafka.NewDeadLetterReader), built
// once by the service and closed by it, so that the page's requests share
// one Kafka client instead of connecting each.
type DeadLetterReader interface {
	// Topic is the dead-letter topic's name.
	Topic() string
	// Bounds returns each partition's first offset and high-water mark,
	// none when the topic does not exist.
	Bounds() ([]kafka.PartitionBounds, error)
	// Range calls fn with the records of a partition from offset from up
	// to, but not including, until; their bytes belong to the reader once
	// fn returns.
	Range(ctx context.Context, partition int32, from, until int64, fn func(kafka.Record) error) error
}

// deadLetters serves the latest records of the dead-letter topic.
type deadLetters struct {
	reader DeadLetterReader
	topic  string
	events string
	log    *slog.Logger
	// busy lets one read run at a time, so that a reloading crowd cannot
	// queue fetches of up to filterScan records each.
	busy chan struct{}
}

func newDeadLetters(reader DeadLetterReader, events string, log *slog.Logger) *deadLetters {
	return &deadLetters{reader: reader, topic: reader.Topic(), events: events, log: log.With("component", "ui"), busy: make(chan struct{}, 1)}
}

func (d *deadLetters) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limit := defaultDeadLetters
	q := r.URL.Query()
	filter := deadLetterFilter{reason: q.Get("reason"), key: q.Get("key")}
	if len(filter.reason) > 64 || len(filter.key) > processor.MaxKeyLength {
		writeError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("reason is at most 64 bytes and key at most %d", processor.MaxKeyLength))
		return
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxDeadLetters {
			writeError(w, http.StatusBadRequest, "invalid_parameter", fmt.Sprintf("limit must be an integer from 1 to %d", maxDeadLetters))
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), deadLetterTimeout)
	defer cancel()
	release, ok := d.acquire(ctx, w)
	if !ok {
		return
	}
	defer release()
	page, err := d.read(ctx, limit, filter)
	if err != nil {
		d.log.Warn("failed to read dead letters", "topic", d.topic, "error", err)
		writeError(w, http.StatusServiceUnavailable, "kafka_unavailable", "the dead letters could not be read from Kafka; retry")
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// acquire takes the one Kafka read slot, or answers 503 busy.
func (d *deadLetters) acquire(ctx context.Context, w http.ResponseWriter) (release func(), ok bool) {
	select {
	case d.busy <- struct{}{}:
		return func() { <-d.busy }, true
	case <-ctx.Done():
		writeError(w, http.StatusServiceUnavailable, "busy", "another read of the dead letters is running; retry")
		return nil, false
	}
}

// read returns the last limit records of each partition (with a filter,
// those that match among the last filterScan), merged newest first and
// cut to limit.
func (d *deadLetters) read(ctx context.Context, limit int, filter deadLetterFilter) (deadLetterPage, error) {
	page := deadLetterPage{Topic: d.topic, EventsTopic: d.events, Records: []deadLetter{}}
	bounds, err := d.reader.Bounds()
	if err != nil {
		return page, err
	}
	for _, b := range bounds {
		page.Total += b.Newest - b.Oldest
		if b.Newest <= b.Oldest {
			continue
		}
		window := int64(limit)
		if !filter.empty() {
			window = filterScan
		}
		err := d.reader.Range(ctx, b.Partition, max(b.Oldest, b.Newest-window), b.Newest, func(r kafka.Record) error {
			if dl := toDeadLetter(r); filter.match(dl) {
				page.Records = append(page.Records, dl)
			}
			return nil
		})
		if err != nil {
			return page, fmt.Errorf("failed to read %s/%d: %w", d.topic, b.Partition, err)
		}
	}
	slices.SortFunc(page.Records, func(a, b deadLetter) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Partition, b.Partition), cmp.Compare(b.Offset, a.Offset))
	})
	page.Records = page.Records[:min(len(page.Records), limit)]
	return page, nil
}

func toDeadLetter(m kafka.Record) deadLetter {
	dl := deadLetter{Partition: m.Partition, Offset: m.Offset, Time: m.Timestamp.UTC(), Key: preview(m.Key, 256).text, ValueBytes: len(m.Value)}
	var topic, partition, offset string
	dl.Replayable = utf8.Valid(m.Key) && len(m.Key) > 0
	for _, h := range m.HeaderList {
		if h == nil {
			continue
		}
		switch k := string(h.Key); k {
		case processor.HeaderKeyTruncated, processor.HeaderHeadersDropped:
			dl.Replayable = false
		default:
			if !strings.HasPrefix(k, "eventfold.") || k == HeaderReplayedFrom || k == HeaderReplayedAt {
				if dl.Headers == nil {
					dl.Headers = map[string]string{}
				}
				dl.Headers[k] = preview(h.Value, 256).text
			}
		case processor.HeaderReason:
			dl.Reason = string(h.Value)
		case processor.HeaderError:
			dl.Error = string(h.Value)
		case processor.HeaderTruncated:
			dl.TruncatedFrom = string(h.Value)
			dl.Replayable = false
		case processor.HeaderTopic:
			topic = string(h.Value)
		case processor.HeaderPartition:
			partition = string(h.Value)
		case processor.HeaderOffset:
			offset = string(h.Value)
		}
	}
	if topic != "" {
		dl.Source = topic + "/" + partition + "@" + offset
	}
	v := preview(m.Value, previewBytes)
	dl.Value, dl.Binary = v.text, v.binary
	return dl
}

type previewed struct {
	text   string
	binary bool
}

// preview returns the start of b as text: UTF-8 as it is, cut at a rune
// boundary, anything else with Go's escapes.
func preview(b []byte, n int) previewed {
	if utf8.Valid(b) {
		if len(b) <= n {
			return previewed{text: string(b)}
		}
		cut := n
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		return previewed{text: string(b[:cut])}
	}
	quoted := strconv.Quote(string(b[:min(len(b), n/4)]))
	return previewed{text: strings.Trim(quoted, `"`), binary: true}
}

// errNoDeadLetter says there is no record at the offset asked for.
var errNoDeadLetter = errors.New("no such dead letter")

// readOne reads the dead letter at partition and offset, with copies of
// its key, value and headers.
func (d *deadLetters) readOne(ctx context.Context, partition int32, offset int64) (kafka.Record, error) {
	var (
		out   kafka.Record
		found bool
	)
	err := d.reader.Range(ctx, partition, offset, offset+1, func(r kafka.Record) error {
		out, found = r, true
		out.Key, out.Value = slices.Clone(r.Key), slices.Clone(r.Value)
		out.HeaderList = make([]*sarama.RecordHeader, 0, len(r.HeaderList))
		for _, h := range r.HeaderList {
			if h != nil {
				out.HeaderList = append(out.HeaderList, &sarama.RecordHeader{Key: slices.Clone(h.Key), Value: slices.Clone(h.Value)})
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, kafka.ErrOffsetGone) || errors.Is(err, sarama.ErrUnknownTopicOrPartition) || (err == nil && !found):
		// Before the first offset, past the last, on a partition or topic
		// that does not exist, or a transaction marker.
		return out, errNoDeadLetter
	case err != nil:
		return out, fmt.Errorf("failed to read %s/%d@%d: %w", d.topic, partition, offset, err)
	}
	return out, nil
}
