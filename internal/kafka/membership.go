package kafka

import (
	"cmp"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// Session timeouts of the processor's consumer group membership.
const (
	// DynamicSessionTimeout is sarama's default, kept for dynamic members:
	// such a member leaves the group when it stops cleanly, so the
	// timeout only measures how long a crashed one goes unnoticed.
	DynamicSessionTimeout = 10 * time.Second
	// StaticSessionTimeout is the default for a static member (KIP-345).
	// A static member does not leave the group when it stops: the group
	// keeps its partitions, unconsumed, until it comes back or its session
	// times out. So the timeout must outlast a clean restart, a pod's
	// reschedule included, or the restart costs the two rebalances static
	// membership avoids; and a crashed instance's partitions wait that long
	// for a new owner (their standbys answer reads meanwhile). 45 s is
	// Kafka's consumer default since 3.0 (KIP-735) and Kafka Streams'.
	StaticSessionTimeout = 45 * time.Second
	// MinSessionTimeout and MaxSessionTimeout are the brokers' default
	// bounds (group.min.session.timeout.ms, and kfake's
	// group.max.session.timeout.ms, lower than Kafka's 30 min): a timeout
	// out of the broker's bounds fails every join.
	MinSessionTimeout = 6 * time.Second
	MaxSessionTimeout = 5 * time.Minute
	// heartbeat is sarama's default heartbeat interval, kept unless it is
	// more than a third of the session timeout.
	heartbeat = 3 * time.Second
)

// Membership says how the processor joins its consumer group.
type Membership struct {
	// InstanceID makes the processor a static member of the group
	// (Kafka's group.instance.id, KIP-345): it keeps its partitions when
	// it restarts within SessionTimeout, with no rebalance. It must be
	// unique in the group and stable across restarts, such as a
	// StatefulSet pod's name: a second member with the same id fences
	// the first. Empty joins as a dynamic member, which leaves the group
	// when it stops.
	InstanceID string
	// SessionTimeout is how long the group waits for a member that sends
	// no heartbeat before it hands its partitions to the others; 0 means
	// DynamicSessionTimeout, or StaticSessionTimeout with an InstanceID.
	SessionTimeout time.Duration
}

// Validate reports an instance id that sarama refuses (up to 249 of
// [0-9a-zA-Z._-], not "." or "..", and a Kafka protocol version of at
// least 2.3.0) or a session timeout out of bounds. version is
// Config.Version; empty is DefaultVersion.
func (m Membership) Validate(version string) error {
	if m.SessionTimeout != 0 && (m.SessionTimeout < MinSessionTimeout || m.SessionTimeout > MaxSessionTimeout) {
		return fmt.Errorf("session timeout %s must be from %s to %s", m.SessionTimeout, MinSessionTimeout, MaxSessionTimeout)
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V3_6_0_0
	if m.InstanceID != "" { // Config.Validate reports a bad version of its own
		v, err := sarama.ParseKafkaVersion(cmp.Or(version, DefaultVersion))
		if err != nil {
			return fmt.Errorf("failed to parse kafka version %q: %w", version, err)
		}
		sc.Version = v
	}
	m.Apply(sc)
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("failed to validate instance id %q: %w", m.InstanceID, err)
	}
	return nil
}

// Timeout returns the session timeout in effect.
func (m Membership) Timeout() time.Duration {
	switch {
	case m.SessionTimeout != 0:
		return m.SessionTimeout
	case m.InstanceID != "":
		return StaticSessionTimeout
	default:
		return DynamicSessionTimeout
	}
}

// Apply sets the membership into a consumer group's sarama config.
// sarama sends no LeaveGroup when a static member closes (KIP-345), so a
// clean stop keeps the member's partitions with the group for its
// session timeout, like Kafka Streams' static members.
func (m Membership) Apply(sc *sarama.Config) {
	sc.Consumer.Group.InstanceId = m.InstanceID
	sc.Consumer.Group.Session.Timeout = m.Timeout()
	sc.Consumer.Group.Heartbeat.Interval = min(heartbeat, m.Timeout()/3)
}
