package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// `eventfold rebuild` folds the whole events topic, from its first
// offset, into the table of a new group: after the fold changed, the old
// table is left alone and `serve --group <new>` switches to the new one.
//
// Every number it reports comes from Kafka. The group's position is its
// committed offsets; the target is the partitions' high-water marks. goka
// marks an event's offset only after every write of its callback (table
// value, dead letter) was acknowledged with acks=all, and sarama commits
// marked offsets once a second (Consumer.Offsets.AutoCommit.Interval). So
// the committed position trails the fold by about a second, but the table
// never trails the committed position: once it reaches the target, the
// table holds the fold of every event below it.

const (
	// rebuildPollEvery bounds how often the offsets are read between
	// progress lines: each read is one ListOffsets per partition and one
	// OffsetFetch.
	rebuildPollEvery = 500 * time.Millisecond
	// rebuildSettle bounds the wait, once the high-water marks of the
	// start are reached, for the events that arrived since (see settled).
	// serve folds the rest when it starts.
	rebuildSettle = 10 * time.Second
	// rebuildStopTimeout bounds the processor's shutdown; goka itself waits
	// up to 60 s for the callbacks in flight.
	rebuildStopTimeout = 90 * time.Second
	// rebuildLeaderWait bounds the wait for the leader of a partition of a
	// topic created a moment ago.
	rebuildLeaderWait = 15 * time.Second
	// rebuildLagShown caps the partitions listed on a progress line.
	rebuildLagShown = 12
)

type rebuildFlags struct {
	common   commonFlags
	interval time.Duration
	timeout  time.Duration
}

func parseRebuildFlags(args []string, stderr io.Writer) (rebuildFlags, error) {
	var f rebuildFlags
	fs := newFlagSet("rebuild", "eventfold rebuild: fold the whole events topic from the beginning into the table of a new --group,\n"+
		"report progress, and stop once caught up. Then run `eventfold serve --group <new group>`.")
	fs.SetOutput(stderr)
	f.common.register(fs)
	fs.durationVar(&f.interval, "progress-interval", 2*time.Second, "how often to report progress")
	fs.durationVar(&f.timeout, "timeout", 0, "give up (exit 1) if not caught up within this long; 0 waits as long as it takes")
	if err := fs.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, err
		}
		return f, fmt.Errorf("%w: %w", errUsage, err)
	}
	if err := f.common.validate(); err != nil {
		return f, err
	}
	switch {
	case f.interval <= 0:
		return f, fmt.Errorf("%w: --progress-interval %s must be positive", errUsage, f.interval)
	case f.timeout < 0:
		return f, fmt.Errorf("%w: --timeout %s must not be negative", errUsage, f.timeout)
	}
	return f, nil
}

func rebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseRebuildFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, f.common.logFormat, f.common.logLevel)
	if err != nil {
		return err
	}
	routeSaramaLogs(log)
	kc, stopBroker, err := f.common.connect(ctx, log)
	if err != nil {
		return err
	}
	defer stopBroker()

	topics := f.common.topics()
	probe, err := newOffsetProbe(kc, topics)
	if err != nil {
		return err
	}
	defer probe.Close()
	if err := probe.checkNewGroup(); err != nil {
		return err
	}
	// The table must have as many partitions as the events topic, whatever
	// --partitions says.
	topics.Partitions = int32(len(probe.partitions))
	partitions, err := kafka.Setup(ctx, kc, topics)
	if err != nil {
		return fmt.Errorf("failed to set up topics: %w", err)
	}
	// Setup returns as soon as Kafka accepted the new table topic; goka
	// fails to start on a partition that has no leader yet.
	if _, err := probe.offsets(topics.Table(), sarama.OffsetNewest); err != nil {
		return err
	}
	first, err := probe.measure()
	if err != nil {
		return err
	}
	deadLetters, err := probe.written(topics.DeadLetter())
	if err != nil {
		return err
	}
	r := &rebuildRun{log: log, probe: probe, topics: topics, interval: f.interval, target: first.end, first: first, reported: first,
		// Committed offsets move in steps of the commit interval: a rate
		// over fewer than a few of them swings between 0 and twice the
		// real one.
		rateWindow:  max(f.interval, 5*kc.Sarama().Consumer.Offsets.AutoCommit.Interval),
		readings:    []position{first},
		deadLetters: deadLetters,
	}
	r.report(first, "rebuild starting")
	if r.total(first.end) == 0 {
		fmt.Fprintf(stdout, "events topic %s is empty: nothing to fold; group %s starts from its beginning\n", topics.Events, topics.Group)
		return nil
	}

	// The processor's registry is thrown away: the progress comes from
	// Kafka, not from counters of this process.
	proc, err := processor.New(processor.Config{Kafka: kc, Topics: topics, Partitions: partitions, Logger: log,
		StorageDir: filepath.Join(f.common.dataDir, "processor", topics.Group)}, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	procCtx, stopProc := context.WithCancel(ctx)
	defer stopProc()
	var procErr error
	procDone := make(chan struct{})
	go func() {
		procErr = proc.Run(procCtx)
		close(procDone)
	}()

	followCtx, cancelFollow := ctx, context.CancelFunc(func() {})
	if f.timeout > 0 {
		followCtx, cancelFollow = context.WithTimeout(ctx, f.timeout)
	}
	last, followErr := r.follow(followCtx, procDone)
	cancelFollow()

	stopProc()
	if err := r.awaitStop(procDone); err != nil {
		return err
	}
	if procErr != nil {
		return fmt.Errorf("failed to stop the processor: %w", procErr)
	}
	final, err := probe.measure()
	if err != nil {
		log.Warn("failed to read the offsets after the processor stopped; reporting the last reading", "error", err)
		final = last
	}
	if followErr != nil {
		return r.failure(ctx, final, followErr, f.timeout)
	}
	return r.summarize(stdout, last, final)
}

// offsetProbe reads a group's position in the events topic from Kafka.
type offsetProbe struct {
	client     sarama.Client
	admin      sarama.ClusterAdmin
	topics     kafka.Topics
	partitions []int32
	// logStart is the first offset of each partition: where a group with
	// nothing committed starts (Offsets.Initial is OffsetOldest).
	logStart []int64
}

// errEventsTopicMissing is returned when there is nothing to rebuild from.
var errEventsTopicMissing = errors.New("events topic does not exist")

func newOffsetProbe(kc kafka.Config, topics kafka.Topics) (*offsetProbe, error) {
	sc := kc.Sarama()
	sc.ClientID = kc.ClientID + "-rebuild"
	// A mistyped --events-topic must not create a topic as a side effect
	// of a metadata request.
	sc.Metadata.AllowAutoTopicCreation = false
	client, err := sarama.NewClient(kc.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to kafka at %s: %w", strings.Join(kc.Brokers, ","), err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("failed to connect the admin client: %w", err)
	}
	p := &offsetProbe{client: client, admin: admin, topics: topics}
	n, err := p.partitionCount(topics.Events)
	if err != nil {
		p.Close()
		return nil, err
	}
	if n == 0 {
		p.Close()
		return nil, fmt.Errorf("%w: %w: %s, so there is nothing to rebuild from (check --events-topic and --brokers)",
			errUsage, errEventsTopicMissing, topics.Events)
	}
	for i := range n {
		p.partitions = append(p.partitions, i)
	}
	if p.logStart, err = p.offsets(topics.Events, sarama.OffsetOldest); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close closes the admin client and with it the client.
func (p *offsetProbe) Close() error { return p.admin.Close() }

// partitionCount returns the partition count of a topic, 0 if it does
// not exist.
func (p *offsetProbe) partitionCount(topic string) (int32, error) {
	meta, err := p.admin.DescribeTopics([]string{topic})
	if err != nil {
		return 0, fmt.Errorf("failed to describe topic %s: %w", topic, err)
	}
	for _, m := range meta {
		switch {
		case m.Name != topic:
		case errors.Is(m.Err, sarama.ErrUnknownTopicOrPartition):
			return 0, nil
		case !errors.Is(m.Err, sarama.ErrNoError):
			return 0, fmt.Errorf("failed to describe topic %s: %w", topic, m.Err)
		default:
			return int32(len(m.Partitions)), nil
		}
	}
	return 0, nil
}

// offsets returns the oldest or newest offset of each partition of the
// events topic, or of a topic with as many partitions.
func (p *offsetProbe) offsets(topic string, which int64) ([]int64, error) {
	out := make([]int64, len(p.partitions))
	for i, part := range p.partitions {
		o, err := p.offset(topic, part, which)
		if err != nil {
			return nil, err
		}
		out[i] = o
	}
	return out, nil
}

// offset returns the oldest or newest offset of one partition. A topic
// that kafka.Setup has just created may have no leader for a few seconds,
// so leadership errors are retried for up to rebuildLeaderWait.
func (p *offsetProbe) offset(topic string, part int32, which int64) (int64, error) {
	deadline := time.Now().Add(rebuildLeaderWait)
	for {
		o, err := p.client.GetOffset(topic, part, which)
		leaderless := errors.Is(err, sarama.ErrNotLeaderForPartition) || errors.Is(err, sarama.ErrLeaderNotAvailable) ||
			errors.Is(err, sarama.ErrUnknownTopicOrPartition)
		switch {
		case err == nil:
			return o, nil
		case !leaderless || time.Now().After(deadline):
			return 0, fmt.Errorf("failed to read the offsets of %s/%d: %w", topic, part, err)
		}
		// GetOffset refreshes the metadata itself after a failure.
		time.Sleep(p.client.Config().Metadata.Retry.Backoff)
	}
}

// written returns the records ever written to a topic: the sum of its
// high-water marks, 0 if it does not exist.
func (p *offsetProbe) written(topic string) (int64, error) {
	n, err := p.partitionCount(topic)
	if err != nil {
		return 0, err
	}
	var sum int64
	for part := range n {
		o, err := p.offset(topic, part, sarama.OffsetNewest)
		if err != nil {
			return 0, err
		}
		sum += o
	}
	return sum, nil
}

// checkNewGroup refuses a group that has folded before: its committed
// offsets would make the processor resume instead of starting over, and
// its table holds values of the fold being replaced.
func (p *offsetProbe) checkNewGroup() error {
	all, err := p.committed(nil) // nil: every topic
	if err != nil {
		return err
	}
	var committed []string
	for topic, blocks := range all {
		for part, b := range blocks {
			if !errors.Is(b.Err, sarama.ErrNoError) {
				return fmt.Errorf("failed to read the committed offset of group %s on %s/%d: %w", p.topics.Group, topic, part, b.Err)
			}
			if b.Offset >= 0 {
				committed = append(committed, fmt.Sprintf("%s/%d@%d", topic, part, b.Offset))
			}
		}
	}
	slices.Sort(committed)
	table := p.topics.Table()
	written, err := p.written(table)
	if err != nil {
		return err
	}
	if len(committed) == 0 && written == 0 {
		return nil
	}
	var why []string
	if len(committed) > 0 {
		why = append(why, fmt.Sprintf("has committed offsets (%s)", abbreviate(committed, 6)))
	}
	if written > 0 {
		why = append(why, fmt.Sprintf("its table %s holds %d records", table, written))
	}
	return fmt.Errorf("%w: group %s %s: a rebuild folds into a new group, never into one that has folded before; choose a new --group",
		errUsage, p.topics.Group, strings.Join(why, " and "))
}

// position is one reading of the group's position in the events topic.
type position struct {
	at time.Time
	// next is the next offset the group folds in each partition: its
	// committed offset, or the log start where it has committed none.
	next []int64
	// end is each partition's high-water mark.
	end []int64
}

// measure reads the committed offsets first and the high-water marks
// second, so that the lag it reports is never less than the real one.
func (p *offsetProbe) measure() (position, error) {
	pos := position{at: time.Now(), next: make([]int64, len(p.partitions))}
	committed, err := p.committed(map[string][]int32{p.topics.Events: p.partitions})
	if err != nil {
		return pos, err
	}
	for i, part := range p.partitions {
		b := committed[p.topics.Events][part]
		switch {
		case b == nil || b.Offset < 0:
			pos.next[i] = p.logStart[i]
		case !errors.Is(b.Err, sarama.ErrNoError):
			return pos, fmt.Errorf("failed to read the committed offset of %s/%d: %w", p.topics.Events, part, b.Err)
		default:
			pos.next[i] = b.Offset
		}
	}
	pos.end, err = p.offsets(p.topics.Events, sarama.OffsetNewest)
	return pos, err
}

// committed returns the group's committed offsets by topic and partition.
// A group the coordinator does not know has none: Kafka answers with
// offsets of -1, kfake with GROUP_ID_NOT_FOUND.
func (p *offsetProbe) committed(partitions map[string][]int32) (map[string]map[int32]*sarama.OffsetFetchResponseBlock, error) {
	resp, err := p.admin.ListConsumerGroupOffsets(p.topics.Group, partitions)
	switch {
	case errors.Is(err, sarama.ErrGroupIDNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("failed to read the committed offsets of group %s: %w", p.topics.Group, err)
	}
	return resp.Blocks, nil
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

// rebuildRun follows one rebuild and reports on it.
type rebuildRun struct {
	log      *slog.Logger
	probe    *offsetProbe
	topics   kafka.Topics
	interval time.Duration
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

// total counts the events below offsets, from the log start.
func (r *rebuildRun) total(offsets []int64) int64 {
	var n int64
	for i, o := range offsets {
		n += max(0, o-r.probe.logStart[i])
	}
	return n
}

// follow reads the offsets until the group has caught up, reporting
// progress every interval, and returns the last reading.
func (r *rebuildRun) follow(ctx context.Context, procDone <-chan struct{}) (position, error) {
	poll := min(r.interval, rebuildPollEvery)
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
		pos, err := r.probe.measure()
		if err != nil {
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
// is 0 or did not shrink by a quarter within rebuildSettle. Under a
// steady stream of events the lag never reaches 0; its size then swings
// with the commit interval, which a quarter rides out.
func (r *rebuildRun) settled(pos position) bool {
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
	if pos.at.Sub(r.settleFrom.at) < rebuildSettle {
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
func (r *rebuildRun) remember(pos position) {
	r.readings = append(r.readings, pos)
	for len(r.readings) > 2 && pos.at.Sub(r.readings[1].at) >= r.rateWindow {
		r.readings = r.readings[1:]
	}
}

// rates returns, over the readings' window, the events folded per second
// and how fast the lag shrank, which is less while events arrive.
func (r *rebuildRun) rates() (folded, shrink float64) {
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
func (r *rebuildRun) eta(pos position) string {
	rate, shrink := r.rates()
	var d time.Duration
	if left := r.total(r.target) - r.totalBelow(pos.next, r.target); left > 0 {
		if rate <= 0 {
			return "unknown"
		}
		d = time.Duration(float64(left) / rate * float64(time.Second))
	} else {
		_, lag := pos.lag()
		d = max(0, rebuildSettle-pos.at.Sub(r.settleFrom.at))
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
func (r *rebuildRun) report(pos position, msg string) {
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

// totalBelow counts the folded events below target, so that events
// arriving during the rebuild do not push the share past 100%.
func (r *rebuildRun) totalBelow(next, target []int64) int64 {
	clipped := make([]int64, len(next))
	for i := range next {
		clipped[i] = min(next[i], target[i])
	}
	return r.total(clipped)
}

// awaitStop waits for the processor to stop. goka closes its producer on
// the way out, which flushes what is still buffered; the table writes
// below the committed offsets were acknowledged before they were marked.
func (r *rebuildRun) awaitStop(procDone <-chan struct{}) error {
	select {
	case <-procDone:
		return nil
	case <-time.After(rebuildStopTimeout):
		return fmt.Errorf("processor did not stop within %s; the table may lack the last writes", rebuildStopTimeout)
	}
}

// failure describes a rebuild that did not catch up.
func (r *rebuildRun) failure(ctx context.Context, pos position, err error, timeout time.Duration) error {
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
func (r *rebuildRun) summarize(stdout io.Writer, caught, final position) error {
	folded := r.total(caught.next) - r.total(r.first.next)
	took := caught.at.Sub(r.first.at)
	rate := float64(folded) / max(took.Seconds(), 1e-3)
	records, err := r.probe.written(r.topics.Table())
	if err != nil {
		return err
	}
	dlq, err := r.probe.written(r.topics.DeadLetter())
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
	if len(parts) > rebuildLagShown {
		slices.SortStableFunc(parts, func(a, b int) int { return cmp.Compare(lag[b], lag[a]) })
	}
	items := make([]string, len(parts))
	for i, p := range parts {
		items[i] = strconv.Itoa(p) + ":" + strconv.FormatInt(lag[p], 10)
	}
	return abbreviate(items, rebuildLagShown)
}

// abbreviate joins at most n items and says how many it left out.
func abbreviate(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ",")
	}
	return strings.Join(items[:n], ",") + fmt.Sprintf(",+%d more", len(items)-n)
}
