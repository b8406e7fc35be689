package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// WriteResult is the write scenario: POST /customers/{id}/events, which
// answers once the fold's decision is visible in the view, against the
// bare publish of the same events to Kafka.
type WriteResult struct {
	Writers         int     `json:"writers"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Service counts 201 Created as OK: accepted and visible.
	Service Latency `json:"service"`
	// Baseline publishes the events with the service's own publisher
	// (idempotent sarama, acks=all) to a scratch topic: the Kafka part of
	// a write, without the fold and the wait for the view.
	Baseline Latency `json:"publish_baseline"`
	Usage    Usage   `json:"usage"`
}

// workingSet is how many customers each writer writes to. Writers own
// disjoint customers, so If-Match never conflicts between them; a writer
// reads a customer's version once, untimed, before its first write.
const workingSet = 100

// writer is one writer's view of its customers' versions.
type writer struct {
	ids      []string
	versions map[string]int64 // absent: unknown, read it first
}

func newWriters(ids []string, n int) []*writer {
	out := make([]*writer, n)
	for w := range out {
		out[w] = &writer{versions: map[string]int64{}}
		for i := w; i < len(ids) && len(out[w].ids) < workingSet; i += n {
			out[w].ids = append(out[w].ids, ids[i])
		}
	}
	return out
}

// runWrite loads the write path and its publish baseline, in turns.
func runWrite(ctx context.Context, cl *cluster, svc *service, ids []string, writers int, d time.Duration, seed int64) (*WriteResult, error) {
	scratch := svc.topics.Events + ".bench-publish"
	if err := cl.createTopic(ctx, scratch, int(svc.partitions)); err != nil {
		return nil, err
	}
	publisher, err := kafka.NewPublisher(svc.kc, scratch, processor.NewMurmur2Hasher)
	if err != nil {
		return nil, err
	}
	defer publisher.Close()
	client := newHTTPClient(writers)
	defer client.CloseIdleConnections()

	ws := newWriters(ids, writers)
	baseline := func(ctx context.Context, w int, rng *rand.Rand) string {
		id := ws[w].ids[rng.Intn(len(ws[w].ids))]
		if _, _, err := publisher.Publish(ctx, id, renameEvent(id, rng)); err != nil {
			return outcomeError
		}
		return "ok"
	}
	service := func(ctx context.Context, w int, rng *rand.Rand) string {
		return ws[w].write(ctx, client, svc.base, rng)
	}
	b, s := alternate(ctx, writers, d, seed, baseline, service)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("failed to finish the write load: %w", err)
	}
	return &WriteResult{Writers: writers, DurationSeconds: d.Seconds(), Service: s.summary("201"), Baseline: b.summary("ok")}, nil
}

// renameEvent is a CloudEvent as the server builds it from a POST.
func renameEvent(id string, rng *rand.Rand) []byte {
	ev := map[string]any{
		"specversion": "1.0", "id": uuid.NewString(), "source": "/eventfold/http", "subject": id,
		"time": time.Now().UTC().Format(time.RFC3339Nano), "type": processor.TypeRenamed,
		"expectedversion": rng.Intn(50), "data": map[string]string{"name": fmt.Sprintf("Writer %d", rng.Intn(1000))},
	}
	b, _ := json.Marshal(ev) // maps of strings and ints always encode
	return b
}

// write renames one of the writer's customers with If-Match of its
// version. A customer whose version is not known yet is read first; that
// read is the setup of a later write and returns no outcome.
func (wr *writer) write(ctx context.Context, client *http.Client, base string, rng *rand.Rand) string {
	id := wr.ids[rng.Intn(len(wr.ids))]
	version, known := wr.versions[id]
	// Whatever happens next, the version is stale until an answer says.
	delete(wr.versions, id)
	if !known {
		if v, ok := readVersion(ctx, client, base, id); ok {
			wr.versions[id] = v
		}
		return ""
	}
	body := fmt.Sprintf(`{"type":"customer.renamed","data":{"name":"Writer %d"}}`, rng.Intn(1000))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/customers/"+id+"/events", strings.NewReader(body))
	if err != nil {
		return outcomeError
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", `"`+strconv.FormatInt(version, 10)+`"`)
	resp, err := client.Do(req)
	if err != nil {
		return outcomeError
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return outcomeError
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		if v, err := strconv.ParseInt(strings.Trim(resp.Header.Get("ETag"), `"`), 10, 64); err == nil {
			wr.versions[id] = v
		}
	case http.StatusConflict:
		var conflict struct {
			Version *int64 `json:"version"`
		}
		if json.NewDecoder(bytes.NewReader(raw)).Decode(&conflict) == nil && conflict.Version != nil {
			wr.versions[id] = *conflict.Version
		}
	}
	return statusOutcome(resp.StatusCode)
}

func readVersion(ctx context.Context, client *http.Client, base, id string) (int64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/customers/"+id, nil)
	if err != nil {
		return 0, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	v, err := strconv.ParseInt(strings.Trim(resp.Header.Get("ETag"), `"`), 10, 64)
	return v, err == nil && resp.StatusCode == http.StatusOK
}
