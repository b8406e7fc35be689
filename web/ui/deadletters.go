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

// deadLetters serves the latest records of the dead-letter topic. Each
// request connects anew and closes when done: the panel polls rarely, and
// the handler then holds no connection that outlives the server.
type deadLetters struct {
	kafka  kafka.Config
	topic  string
	events string
	log    *slog.Logger
	// busy lets one read run at a time, so that a reloading crowd cannot
	// open a Kafka connection each.
	busy chan struct{}
}

func newDeadLetters(kc kafka.Config, topics kafka.Topics, log *slog.Logger) *deadLetters {
	return &deadLetters{kafka: kc, topic: topics.DeadLetter(), events: topics.Events, log: log.With("component", "ui"), busy: make(chan struct{}, 1)}
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
	client, err := d.connect()
	if err != nil {
		return page, err
	}
	defer client.Close()
	partitions, err := client.Partitions(d.topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return page, nil // no dead letter was ever written
	}
	if err != nil {
		return page, fmt.Errorf("failed to list partitions of %s: %w", d.topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return page, fmt.Errorf("failed to create consumer: %w", err)
	}
	defer consumer.Close()
	for _, p := range partitions {
		oldest, newest, err := d.bounds(client, p)
		if err != nil {
			return page, err
		}
		page.Total += newest - oldest
		if newest <= oldest {
			continue
		}
		window := int64(limit)
		if !filter.empty() {
			window = filterScan
		}
		records, err := d.readRange(ctx, consumer, p, max(oldest, newest-window), newest)
		if err != nil {
			return page, err
		}
		for _, dl := range records {
			if filter.match(dl) {
				page.Records = append(page.Records, dl)
			}
		}
	}
	slices.SortFunc(page.Records, func(a, b deadLetter) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Partition, b.Partition), cmp.Compare(b.Offset, a.Offset))
	})
	page.Records = page.Records[:min(len(page.Records), limit)]
	return page, nil
}

// readRange reads the records of one partition from offset from up to,
// but not including, until.
func (d *deadLetters) readRange(ctx context.Context, consumer sarama.Consumer, partition int32, from, until int64) ([]deadLetter, error) {
	pc, err := consumer.ConsumePartition(d.topic, partition, from)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s/%d@%d: %w", d.topic, partition, from, err)
	}
	defer pc.AsyncClose()
	var out []deadLetter
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("failed to read %s/%d up to %d: %w", d.topic, partition, until, ctx.Err())
		case err := <-pc.Errors():
			return nil, fmt.Errorf("failed to read %s/%d: %w", d.topic, partition, err)
		case m := <-pc.Messages():
			out = append(out, toDeadLetter(m))
			if m.Offset >= until-1 {
				return out, nil
			}
		}
	}
}

func toDeadLetter(m *sarama.ConsumerMessage) deadLetter {
	dl := deadLetter{Partition: m.Partition, Offset: m.Offset, Time: m.Timestamp.UTC(), Key: preview(m.Key, 256).text, ValueBytes: len(m.Value)}
	var topic, partition, offset string
	dl.Replayable = utf8.Valid(m.Key) && len(m.Key) > 0
	for _, h := range m.Headers {
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

// readOne reads the dead letter at partition and offset.
func (d *deadLetters) readOne(ctx context.Context, partition int32, offset int64) (*sarama.ConsumerMessage, error) {
	client, err := d.connect()
	if err != nil {
		return nil, err
	}
	defer client.Close()
	partitions, err := client.Partitions(d.topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return nil, errNoDeadLetter
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list partitions of %s: %w", d.topic, err)
	}
	if !slices.Contains(partitions, partition) {
		return nil, errNoDeadLetter
	}
	oldest, newest, err := d.bounds(client, partition)
	if err != nil {
		return nil, err
	}
	if offset < oldest || offset >= newest {
		return nil, errNoDeadLetter
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("failed to create consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(d.topic, partition, offset)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s/%d@%d: %w", d.topic, partition, offset, err)
	}
	defer pc.AsyncClose()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("failed to read %s/%d@%d: %w", d.topic, partition, offset, ctx.Err())
	case err := <-pc.Errors():
		return nil, fmt.Errorf("failed to read %s/%d@%d: %w", d.topic, partition, offset, err)
	case m := <-pc.Messages():
		if m.Offset != offset { // a compacted or transactional gap
			return nil, errNoDeadLetter
		}
		return m, nil
	}
}

// connect opens a client of the dead-letter topic's cluster for one
// request.
func (d *deadLetters) connect() (sarama.Client, error) {
	sc := d.kafka.Sarama()
	sc.ClientID = d.kafka.ClientID + "-ui"
	sc.Net.DialTimeout = deadLetterTimeout
	client, err := sarama.NewClient(d.kafka.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to connect: %w", err)
	}
	return client, nil
}

// bounds returns a partition's first offset and high-water mark.
func (d *deadLetters) bounds(client sarama.Client, p int32) (oldest, newest int64, err error) {
	if oldest, err = client.GetOffset(d.topic, p, sarama.OffsetOldest); err != nil {
		return 0, 0, fmt.Errorf("failed to read the first offset of %s/%d: %w", d.topic, p, err)
	}
	if newest, err = client.GetOffset(d.topic, p, sarama.OffsetNewest); err != nil {
		return 0, 0, fmt.Errorf("failed to read the high-water mark of %s/%d: %w", d.topic, p, err)
	}
	return oldest, newest, nil
}
