package rebuild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventfold/eventfold/internal/kafka"
)

// lagShown caps the partitions listed on a progress line.
const lagShown = 12

// position is one reading of the group's position in the events topic.
type position struct {
	at time.Time
	// next is the next offset the group folds in each partition: its
	// committed offset, or the log start where it has committed none.
	next []int64
	// end is each partition's high-water mark.
	end []int64
}

// lag returns the events not yet folded in each partition, and their sum.
func (pos position) lag() ([]int64, int64) {
	out := make([]int64, len(pos.next))
	var total int64
	for i := range pos.next {
		out[i] = max(0, pos.end[i]-pos.next[i])
		total += out[i]
	}
	return out, total
}

// reached reports whether every partition is folded up to target.
func (pos position) reached(target []int64) bool {
	for i := range pos.next {
		if pos.next[i] < target[i] {
			return false
		}
	}
	return true
}

// run follows one rebuild and reports on it. Its readings come from
// measure and written, so that its arithmetic is tested without Kafka.
type run struct {
	log      *slog.Logger
	topics   kafka.Topics
	interval time.Duration
	measure  func(context.Context) (position, error)
	written  func(ctx context.Context, topic string) (int64, error)
	// logStart is the first offset of each partition.
	logStart []int64
	// target is the high-water marks when the rebuild started.
	target   []int64
	first    position
	reported position
	// readings are the recent positions the rate is measured over, the
	// oldest at least rateWindow old once the rebuild has run that long.
	readings   []position
	rateWindow time.Duration
	// deadLetters is the size of the dead-letter topic at the start.
	deadLetters int64
	// settleFrom is the reading the lag is compared with once the
	// target is reached; zero before.
	settleFrom position
}

func newRun(log *slog.Logger, p *probe, topics kafka.Topics, interval time.Duration, first position, rateWindow time.Duration) *run {
	return &run{log: log, topics: topics, interval: interval, measure: p.measure, written: p.kafka.Written,
		logStart: p.logStart, target: first.end, first: first, reported: first, readings: []position{first}, rateWindow: rateWindow}
}

// total counts the events below offsets, from the log start.
func (r *run) total(offsets []int64) int64 {
	var n int64
	for i, o := range offsets {
		n += max(0, o-r.logStart[i])
	}
	return n
}

// totalBelow counts the folded events below target, so that events
// arriving during the rebuild do not push the share past 100%.
func (r *run) totalBelow(next, target []int64) int64 {
	clipped := make([]int64, len(next))
	for i := range next {
		clipped[i] = min(next[i], target[i])
	}
	return r.total(clipped)
}

// follow reads the offsets until the group has caught up, reporting
// progress every interval, and returns the last reading.
func (r *run) follow(ctx context.Context, procDone <-chan struct{}) (position, error) {
	poll := min(r.interval, pollEvery)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	last := r.first
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-procDone:
			// Run returns only once its context is cancelled.
			return last, errors.New("processor stopped before the rebuild caught up")
		case <-tick.C:
		}
		pos, err := r.measure(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			// The processor rides out broker outages; so does the report.
			r.log.Warn("failed to read progress", "error", err)
			continue
		}
		last = pos
		r.remember(pos)
		done := r.settled(pos)
		// Half a poll of slack keeps the lines on the interval despite
		// the time the readings take.
		if pos.at.Sub(r.reported.at) >= r.interval-poll/2 {
			r.report(pos, "rebuild progress")
		}
		if done {
			return pos, nil
		}
	}
}

// settled reports whether the rebuild is done: every partition reached
// its target and then the lag, the events that arrived since the start,
// is 0 or did not shrink by a quarter within settleWait. Under a steady
// stream of events the lag never reaches 0; its size then swings with the
// commit interval, which a quarter rides out.
func (r *run) settled(pos position) bool {
	if !pos.reached(r.target) {
		return false
	}
	_, lag := pos.lag()
	if lag == 0 {
		return true
	}
	if r.settleFrom.at.IsZero() {
		r.settleFrom = pos
		return false
	}
	if pos.at.Sub(r.settleFrom.at) < settleWait {
		return false
	}
	if _, before := r.settleFrom.lag(); lag*4 <= before*3 {
		r.settleFrom = pos
		return false
	}
	return true
}

// remember keeps pos for the rate and drops the readings that the
// window no longer needs.
func (r *run) remember(pos position) {
	r.readings = append(r.readings, pos)
	for len(r.readings) > 2 && pos.at.Sub(r.readings[1].at) >= r.rateWindow {
		r.readings = r.readings[1:]
	}
}

// rates returns, over the readings' window, the events folded per second
// and how fast the lag shrank, which is less while events arrive.
func (r *run) rates() (folded, shrink float64) {
	oldest, newest := r.readings[0], r.readings[len(r.readings)-1]
	d := newest.at.Sub(oldest.at).Seconds()
	if d <= 0 {
		return 0, 0
	}
	_, lagBefore := oldest.lag()
	_, lagNow := newest.lag()
	return float64(r.total(newest.next)-r.total(oldest.next)) / d, float64(lagBefore-lagNow) / d
}

// eta estimates the time left: to the target at the fold's rate, then
// until the lag is 0 at the rate it shrinks, or the settling ends.
func (r *run) eta(pos position) string {
	rate, shrink := r.rates()
	var d time.Duration
	if left := r.total(r.target) - r.totalBelow(pos.next, r.target); left > 0 {
		if rate <= 0 {
			return "unknown"
		}
		d = time.Duration(float64(left) / rate * float64(time.Second))
	} else {
		_, lag := pos.lag()
		d = max(0, settleWait-pos.at.Sub(r.settleFrom.at))
		if lag == 0 {
			d = 0
		} else if shrink > 0 {
			d = min(d, time.Duration(float64(lag)/shrink*float64(time.Second)))
		}
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// report logs one progress line.
func (r *run) report(pos position, msg string) {
	byPartition, lag := pos.lag()
	folded, target := r.total(pos.next), r.total(r.target)
	rate, _ := r.rates()
	done := 100.0
	if target > 0 {
		done = 100 * float64(r.totalBelow(pos.next, r.target)) / float64(target)
	}
	r.log.Info(msg,
		"group", r.topics.Group,
		"folded", folded,
		"target", target,
		"done", fmt.Sprintf("%.1f%%", done),
		"rate", fmt.Sprintf("%.0f/s", rate),
		"lag", lag,
		"eta", r.eta(pos),
		"partition_lag", partitionLag(byPartition),
	)
	r.reported = pos
}

// failure describes a rebuild that did not catch up.
func (r *run) failure(ctx context.Context, pos position, err error, timeout time.Duration) error {
	byPartition, lag := pos.lag()
	state := fmt.Sprintf("%d of %d events folded, lag %d (%s)", r.totalBelow(pos.next, r.target), r.total(r.target), lag, partitionLag(byPartition))
	advice := fmt.Sprintf("group %s holds a partial table; rebuild again with a new --group", r.topics.Group)
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("rebuild timed out after %s: %s; %s", timeout, state, advice)
	case ctx.Err() != nil:
		return fmt.Errorf("rebuild interrupted: %s; %s", state, advice)
	}
	return fmt.Errorf("rebuild failed: %w: %s; %s", err, state, advice)
}

// summarize prints the outcome: caught is the reading that found the
// group caught up, final the one after the processor stopped.
func (r *run) summarize(ctx context.Context, stdout io.Writer, caught, final position) error {
	folded := r.total(caught.next) - r.total(r.first.next)
	took := caught.at.Sub(r.first.at)
	rate := float64(folded) / max(took.Seconds(), 1e-3)
	records, err := r.written(ctx, r.topics.Table())
	if err != nil {
		return err
	}
	dlq, err := r.written(ctx, r.topics.DeadLetter())
	if err != nil {
		return err
	}
	byPartition, lag := final.lag()
	r.log.Info("rebuild caught up", "group", r.topics.Group, "folded", folded, "duration", took.Round(time.Millisecond),
		"rate", fmt.Sprintf("%.0f/s", rate), "table_records", records, "lag", lag)
	fmt.Fprintf(stdout, "rebuilt group %s from %s: %d events folded in %s (%.0f events/s); %s holds %d records\n",
		r.topics.Group, r.topics.Events, folded, took.Round(time.Millisecond), rate, r.topics.Table(), records)
	if dlq > r.deadLetters {
		// The dead-letter topic belongs to the events topic, not to a
		// group: the rebuild sends the bad records there a second time.
		fmt.Fprintf(stdout, "%s grew by %d during the rebuild: the rebuild dead-letters every bad record again; "+
			"the eventfold.topic, eventfold.partition and eventfold.offset headers tell copies apart\n",
			r.topics.DeadLetter(), dlq-r.deadLetters)
	}
	if lag > 0 {
		fmt.Fprintf(stdout, "%d events arrived during the rebuild and are not folded yet (%s); serve folds them when it starts\n",
			lag, partitionLag(byPartition))
	}
	fmt.Fprintf(stdout, "serve from it with: eventfold serve --group %s --events-topic %s\n", r.topics.Group, r.topics.Events)
	return nil
}

// partitionLag lists the partitions that lag, as p:lag, the largest first
// when there are too many to show.
func partitionLag(lag []int64) string {
	var parts []int
	for p, l := range lag {
		if l > 0 {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	if len(parts) > lagShown {
		slices.SortStableFunc(parts, func(a, b int) int { return cmp.Compare(lag[b], lag[a]) })
	}
	items := make([]string, len(parts))
	for i, p := range parts {
		items[i] = strconv.Itoa(p) + ":" + strconv.FormatInt(lag[p], 10)
	}
	return abbreviate(items, lagShown)
}

// abbreviate joins at most n items and says how many it left out.
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ",")
	}
	return strings.Join(items[:n], ",") + fmt.Sprintf(",+%d more", len(items)-n)
}
