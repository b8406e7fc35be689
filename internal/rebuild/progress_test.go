package rebuild

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(seconds float64, next, end []int64) position {
	return position{at: t0.Add(time.Duration(seconds * float64(time.Second))), next: next, end: end}
}

func testRun(target []int64) *run {
	first := at(0, []int64{0, 0}, target)
	return &run{log: slog.New(slog.NewTextHandler(io.Discard, nil)), interval: time.Second, logStart: []int64{0, 0},
		target: target, first: first, reported: first, readings: []position{first}, rateWindow: 5 * time.Second}
}

func TestSettled(t *testing.T) {
	tests := []struct {
		name     string
		readings []position // fed in order; the last one's answer is checked
		want     bool
	}{
		{"target not reached", []position{at(1, []int64{50, 100}, []int64{100, 100})}, false},
		{"target reached, no lag", []position{at(1, []int64{100, 100}, []int64{100, 100})}, true},
		{"target reached, new events arrived: starts settling", []position{at(1, []int64{100, 100}, []int64{120, 100})}, false},
		{"lag did not shrink within the settle wait", []position{
			at(1, []int64{100, 100}, []int64{120, 100}),
			at(1+settleWait.Seconds(), []int64{110, 100}, []int64{130, 100}),
		}, true},
		{"lag shrank by a quarter: keeps settling", []position{
			at(1, []int64{100, 100}, []int64{140, 100}),
			at(1+settleWait.Seconds(), []int64{130, 100}, []int64{150, 100}),
		}, false},
		{"within the settle wait", []position{
			at(1, []int64{100, 100}, []int64{120, 100}),
			at(2, []int64{100, 100}, []int64{130, 100}),
		}, false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			r := testRun([]int64{100, 100})
			var got bool
			for _, pos := range test.readings {
				got = r.settled(pos)
			}
			if got != test.want {
				t.Errorf("settled = %v, want %v", got, test.want)
			}
		})
	}
}

func TestETA(t *testing.T) {
	tests := []struct {
		name     string
		target   int64 // on each of the two partitions
		readings []position
		want     string
	}{
		{"no rate yet", 100, nil, "unknown"},
		// 100 events in 1 s, 100 left: 1 s.
		{"at the fold's rate", 100, []position{at(1, []int64{50, 50}, []int64{100, 100})}, "1s"},
		// 10 events/s, 1,100 left: 110 s, rounded to the second.
		{"long", 600, []position{at(10, []int64{50, 50}, []int64{600, 600})}, "1m50s"},
		{"caught up", 100, []position{at(1, []int64{100, 100}, []int64{100, 100})}, "0s"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			r := testRun([]int64{test.target, test.target})
			pos := r.first
			for _, p := range test.readings {
				r.remember(p)
				pos = p
			}
			if got := r.eta(pos); got != test.want {
				t.Errorf("eta = %q, want %q", got, test.want)
			}
		})
	}
}

func TestTotalsClipToTheTarget(t *testing.T) {
	r := testRun([]int64{100, 100})
	r.logStart = []int64{10, 0}
	next := []int64{150, 40}
	if got := r.total(next); got != 180 {
		t.Errorf("total = %d, want 180 (140 + 40 above the log start)", got)
	}
	if got := r.totalBelow(next, r.target); got != 130 {
		t.Errorf("totalBelow = %d, want 130 (90 + 40: events past the target do not count)", got)
	}
}

func TestPartitionLag(t *testing.T) {
	many := make([]int64, 20)
	for i := range many {
		many[i] = int64(i + 1)
	}
	tests := []struct {
		name string
		lag  []int64
		want string
	}{
		{"none", []int64{0, 0, 0}, "none"},
		{"some", []int64{0, 5, 0, 7}, "1:5,3:7"},
		{"too many: the largest first", many, "19:20,18:19,17:18,16:17,15:16,14:15,13:14,12:13,11:12,10:11,9:10,8:9,+8 more"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if got := partitionLag(test.lag); got != test.want {
				t.Errorf("partitionLag = %q, want %q", got, test.want)
			}
		})
	}
}

func TestFollowEndsWhenSettled(t *testing.T) {
	r := testRun([]int64{100, 100})
	r.interval = 10 * time.Millisecond
	readings := []position{at(1, []int64{50, 50}, []int64{100, 100}), at(2, []int64{100, 100}, []int64{100, 100})}
	r.measure = func(context.Context) (position, error) {
		pos := readings[0]
		if len(readings) > 1 {
			readings = readings[1:]
		}
		return pos, nil
	}
	pos, err := r.follow(context.Background(), make(chan struct{}))
	if err != nil || pos.next[0] != 100 {
		t.Fatalf("follow = %v, %v; want the caught-up reading", pos, err)
	}
}

// An interrupt must end the follow at once, even while a reading of
// Kafka hangs: before the rebuild package, Ctrl-C waited for sarama.
func TestFollowReturnsOnCancelDuringAReading(t *testing.T) {
	r := testRun([]int64{100, 100})
	r.interval = 10 * time.Millisecond
	r.measure = func(ctx context.Context) (position, error) {
		<-ctx.Done() // a reading that only ends with ctx
		return position{}, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.follow(ctx, make(chan struct{}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("follow = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("follow took %s to notice the interrupt", took)
	}
	msg := r.failure(ctx, r.first, err, 0).Error()
	if !strings.Contains(msg, "rebuild interrupted") || !strings.Contains(msg, "0 of 200 events folded") {
		t.Errorf("failure = %q", msg)
	}
}

func TestFollowStopsWhenTheProcessorDoes(t *testing.T) {
	r := testRun([]int64{100, 100})
	r.interval = 10 * time.Millisecond
	r.measure = func(context.Context) (position, error) { return at(1, []int64{0, 0}, []int64{100, 100}), nil }
	done := make(chan struct{})
	close(done)
	if _, err := r.follow(context.Background(), done); err == nil || !strings.Contains(err.Error(), "processor stopped") {
		t.Fatalf("follow = %v, want the processor's stop", err)
	}
}
