package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// The bare goka fold is the customer fold as a user would write it by
// hand with goka, the library under eventfold's processor: one group with
// the events topic as input and a persisted table, goka's default leveldb
// storage and sarama configuration (the protocol version and the initial
// offset aside, which a fold from the start needs), Kafka's murmur2
// partitioning, encoding/json for the event and for a small state. It
// does none of eventfold's work beyond that: no validation, no dedupe, no
// decisions, no history, no ordered commits, no dead letters (a record
// that is not JSON is skipped). It measures what goka itself costs on
// these events, so that eventfold's fold can be set beside it.

// bareCustomer is the bare fold's state.
type bareCustomer struct {
	Version         int64        `json:"version"`
	Status          string       `json:"status,omitempty"`
	Name            string       `json:"name,omitempty"`
	Email           string       `json:"email,omitempty"`
	Address         *bareAddress `json:"address,omitempty"`
	SuspendedReason string       `json:"suspended_reason,omitempty"`
	UpdatedAt       string       `json:"updated_at,omitempty"`
	LastEventID     string       `json:"last_event_id,omitempty"`
}

type bareAddress struct {
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// bareEvent is what the bare fold reads of a structured-mode CloudEvent.
type bareEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Time string `json:"time"`
	Data *struct {
		Name    string       `json:"name"`
		Email   string       `json:"email"`
		Address *bareAddress `json:"address"`
		Reason  string       `json:"reason"`
	} `json:"data"`
}

// bareCodec is the bare fold's table codec: encoding/json.
type bareCodec struct{}

func (bareCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (bareCodec) Decode(b []byte) (any, error) {
	var c bareCustomer
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("failed to decode the bare state: %w", err)
	}
	return &c, nil
}

// bareFold applies one event to a state; ok is false for a record that is
// not an event, which leaves the state alone.
func bareFold(c bareCustomer, value []byte) (bareCustomer, bool) {
	var ev bareEvent
	if err := json.Unmarshal(value, &ev); err != nil || ev.Data == nil {
		return c, false
	}
	d := ev.Data
	switch ev.Type {
	case processor.TypeRegistered:
		c.Status, c.Name, c.Email, c.Address = string(processor.StatusActive), d.Name, d.Email, d.Address
	case processor.TypeRenamed:
		c.Name = d.Name
	case processor.TypeEmailChanged:
		c.Email = d.Email
	case processor.TypeAddressChanged:
		c.Address = d.Address
	case processor.TypeSuspended:
		c.Status, c.SuspendedReason = string(processor.StatusSuspended), d.Reason
	case processor.TypeReactivated:
		c.Status, c.SuspendedReason = string(processor.StatusActive), ""
	default:
		return c, false
	}
	c.Version++
	c.UpdatedAt, c.LastEventID = ev.Time, ev.ID
	return c, true
}

// gokaFold is one bare goka fold on a group of its own.
type gokaFold struct {
	gp      *goka.Processor
	group   string
	folded  atomic.Int64 // records seen by the callback
	written atomic.Int64 // table writes issued
	done    chan error
	cancel  context.CancelFunc
}

// startGokaFold starts the bare fold of topic on a fresh group, its
// leveldb storage under dir.
func startGokaFold(ctx context.Context, kc kafka.Config, log *slog.Logger, topic, group, dir string) (*gokaFold, error) {
	f := &gokaFold{group: group, done: make(chan error, 1)}
	g := goka.DefineGroup(goka.Group(group),
		goka.Input(goka.Stream(topic), new(codec.Bytes), func(ctx goka.Context, msg any) {
			f.folded.Add(1)
			var state bareCustomer
			if v, ok := ctx.Value().(*bareCustomer); ok && v != nil {
				state = *v
			}
			value, _ := msg.([]byte)
			if next, ok := bareFold(state, value); ok {
				f.written.Add(1)
				ctx.SetValue(&next)
			}
		}),
		goka.Persist(bareCodec{}),
	)
	// goka's defaults, but for what Kafka 4 and a fold from the start
	// need; passed through the builders, never goka's global config.
	sc := func() *sarama.Config {
		c := goka.DefaultConfig()
		c.Version, _ = sarama.ParseKafkaVersion(kc.Version) // kc was validated
		c.ClientID = "eventfold-bench-goka"
		c.Consumer.Offsets.Initial = sarama.OffsetOldest
		return c
	}
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication, tm.Stream.Replication = 1, 1
	gp, err := goka.NewProcessor(kc.Brokers, g,
		goka.WithHasher(processor.NewMurmur2Hasher),
		goka.WithStorageBuilder(storage.DefaultBuilder(filepath.Join(dir, group))),
		goka.WithLogger(kafka.GokaLogger(log, "bench-goka")),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(sc())),
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(sc())),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(sc())),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(sc(), tm)),
	)
	if err != nil {
		return nil, fmt.Errorf("failed to build the bare goka fold: %w", err)
	}
	f.gp = gp
	ctx, f.cancel = context.WithCancel(ctx)
	go func() { f.done <- gp.Run(ctx) }()
	return f, nil
}

// await waits until the fold has seen every event and Kafka holds every
// table write, as awaitFold does for eventfold.
func (f *gokaFold) await(ctx context.Context, cl *cluster, events int64) (first, last time.Time, cpu time.Duration, err error) {
	running := func() bool { return f.gp.StateReader().State() == goka.ProcStateRunning }
	progress := func() (float64, float64, error) {
		select {
		case err := <-f.done:
			f.done <- err
			return 0, 0, fmt.Errorf("the bare goka fold stopped: %v", err)
		default:
		}
		return float64(f.folded.Load()), float64(f.written.Load()), nil
	}
	first, last, cpu, _, err = awaitProgress(ctx, cl, string(goka.GroupTable(goka.Group(f.group))), float64(events), progress, running)
	return first, last, cpu, err
}

// state reads key's state from the fold's local table.
func (f *gokaFold) state(key string) (bareCustomer, error) {
	v, err := f.gp.Get(key)
	if err != nil {
		return bareCustomer{}, fmt.Errorf("failed to read %s from the bare goka fold: %w", key, err)
	}
	if c, ok := v.(*bareCustomer); ok && c != nil {
		return *c, nil
	}
	return bareCustomer{}, nil
}

// stop ends the fold and waits for it.
func (f *gokaFold) stop() error {
	f.cancel()
	select {
	case err := <-f.done:
		f.done <- err
		if err != nil {
			return fmt.Errorf("the bare goka fold failed: %w", err)
		}
		return nil
	case <-time.After(90 * time.Second):
		return fmt.Errorf("the bare goka fold %s did not stop within 90s", f.group)
	}
}

// checkBareStates compares the bare fold's state of every customer with
// the fold of the events applied in order here: it proves that goka
// delivered every event of a key in order and kept every write. It
// returns the number of customers that differ and a few of them.
func checkBareStates(events *Events, read func(key string) (bareCustomer, error)) (StateCheck, []string, error) {
	want := make([]bareCustomer, len(events.Customers))
	index := make(map[string]int, len(events.Customers))
	for i, id := range events.Customers {
		index[id] = i
	}
	for i := range events.Len() {
		key, value := events.At(i)
		c := index[key]
		want[c], _ = bareFold(want[c], value)
	}
	check := StateCheck{Customers: len(want)}
	var diffs []string
	for i, id := range events.Customers {
		got, err := read(id)
		if err != nil {
			return check, diffs, err
		}
		if !sameBare(got, want[i]) {
			check.Mismatches++
			if len(diffs) < 3 {
				diffs = append(diffs, fmt.Sprintf("%s: got %+v, want %+v", id, got, want[i]))
			}
		}
	}
	return check, diffs, nil
}

func sameBare(a, b bareCustomer) bool {
	aa, ba := a.Address, b.Address
	a.Address, b.Address = nil, nil
	return a == b && (aa == nil) == (ba == nil) && (aa == nil || *aa == *ba)
}

// gokaGroup names round's bare goka group.
func gokaGroup(base string, round int) string { return base + "-goka-" + strconv.Itoa(round) }
