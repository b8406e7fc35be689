package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// ErrFenced is the processor's error when another member of its consumer
// group joined with the same instance id (Config.Membership): the group
// gave that member this one's partitions.
var ErrFenced = errors.New("another instance joined the group with the same instance id")

// fencedGroups builds the processor's consumer groups so that a fenced
// static member stops at once, with cancel(ErrFenced).
//
// sarama learns of the fencing from a refused heartbeat or offset commit,
// reports it on the group's Errors channel and, for a commit, ends the
// session; goka only logs the error and joins again after 5 s, which
// fences the other instance in turn. Two instances with one id would so
// take the partitions from each other every few seconds, each folding them
// for a few seconds while the other does too. Kafka Streams treats the
// fencing as fatal; so does the processor: it stops folding, and its Run
// returns ErrFenced rather than join again.
func fencedGroups(build goka.ConsumerGroupBuilder, cancel context.CancelCauseFunc) goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		cg, err := build(brokers, group, clientID)
		if err != nil {
			return nil, err
		}
		w := &watchedGroup{ConsumerGroup: cg, errs: make(chan error, cap(cg.Errors()))}
		go w.watch(cancel)
		return w, nil
	}
}

// watchedGroup passes its group's errors on, and cancels at a fencing.
type watchedGroup struct {
	sarama.ConsumerGroup
	errs chan error
}

func (w *watchedGroup) Errors() <-chan error { return w.errs }

// watch forwards the group's errors until sarama closes the channel, at
// Close. Like sarama, it drops an error nobody reads (goka reads them only
// during a session).
func (w *watchedGroup) watch(cancel context.CancelCauseFunc) {
	defer close(w.errs)
	for err := range w.ConsumerGroup.Errors() {
		if errors.Is(err, sarama.ErrFencedInstancedId) {
			cancel(fmt.Errorf("%w: %w", ErrFenced, err))
		}
		select {
		case w.errs <- err:
		default:
		}
	}
}
