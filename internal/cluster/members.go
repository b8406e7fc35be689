// Package cluster knows which instance serves which partition when
// instances split the table (serve --serve-mode partitioned).
//
// It keeps no registry of its own. Every instance's processor joins the
// consumer group with its advertised URL as its member data (sarama's
// Consumer.Group.Member.UserData), and Members reads the group's
// description from Kafka: each member's data beside the partitions the
// group assigned it. Kafka's group membership is thus the one truth of
// who owns what, and an instance that dies leaves it when its session
// times out, like it leaves the assignment.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// maxMemberData bounds the member data read from the group: a URL.
const maxMemberData = 4 << 10

// memberData is what an instance advertises in the consumer group.
type memberData struct {
	URL string `json:"url"`
}

// Config configures Members.
type Config struct {
	Kafka kafka.Config
	// Group is the consumer group of the processors, and Topic the
	// events topic they consume, with Partitions partitions.
	Group      string
	Topic      string
	Partitions int32
	// Refresh is how often the group is described again; 0 means a
	// second. A rebalance this instance takes part in refreshes at once.
	Refresh time.Duration
	// StandbyReplicas is how many other instances keep a warm copy of
	// each partition (standby.go); 0 keeps none.
	StandbyReplicas int
	Logger          *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("failed to validate kafka config: %w", err)
	}
	if c.Group == "" || c.Topic == "" || c.Partitions <= 0 {
		return errors.New("membership needs the group, the events topic and its partition count")
	}
	if c.StandbyReplicas < 0 || c.StandbyReplicas > MaxStandbyReplicas {
		return fmt.Errorf("standby replicas %d must be from 0 to %d", c.StandbyReplicas, MaxStandbyReplicas)
	}
	return nil
}

// Members is this instance's picture of the group: which advertised URL
// owns each partition.
type Members struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex // guards admin, which a failed refresh replaces
	admin  sarama.ClusterAdmin
	self   atomic.Pointer[string]
	owners atomic.Pointer[[]string] // by partition; "" for no owner known
	poke   chan struct{}
	// standbys is kept through rebalances: the standbys of the last
	// stable group keep serving while the partitions move.
	standbys atomic.Pointer[standbyPicture]
	short    atomic.Bool // warned of fewer instances than standbys
	// readAt is when the group was last described (status.go).
	readAt atomic.Pointer[time.Time]
}

// New connects to Kafka; call Run to keep the picture current.
func New(cfg Config) (*Members, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failed to validate cluster config: %w", err)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	admin, err := connect(cfg)
	if err != nil {
		return nil, err
	}
	m := &Members{cfg: cfg, log: cfg.Logger.With("component", "cluster"), admin: admin, poke: make(chan struct{}, 1)}
	empty := make([]string, cfg.Partitions)
	m.owners.Store(&empty)
	self := ""
	m.self.Store(&self)
	return m, nil
}

func connect(cfg Config) (sarama.ClusterAdmin, error) {
	sc := cfg.Kafka.Sarama()
	sc.ClientID = cfg.Kafka.ClientID + "-members"
	sc.Metadata.AllowAutoTopicCreation = false
	admin, err := sarama.NewClusterAdmin(cfg.Kafka.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to connect the membership reader: %w", err)
	}
	return admin, nil
}

// reconnect replaces the admin client after a failed description.
// sarama's admin keeps a broker connection that the broker closed (a
// broker restart) and writes to it again at every request, failing with
// "broken pipe" for good, so the picture of the owners would stay that of
// before the restart for as long as the instance runs. A new client
// dials again; while the broker is down, it fails and the old one stays.
func (m *Members) reconnect() {
	admin, err := connect(m.cfg)
	if err != nil {
		m.log.Debug("failed to reconnect the membership reader", "error", err)
		return
	}
	m.mu.Lock()
	old := m.admin
	m.admin = admin
	m.mu.Unlock()
	if err := old.Close(); err != nil {
		m.log.Debug("failed to close the replaced membership reader", "error", err)
	}
}

// SetSelf sets this instance's advertised URL, once its listener is
// bound.
func (m *Members) SetSelf(u string) { m.self.Store(&u) }

// Self returns this instance's advertised URL.
func (m *Members) Self() string { return *m.self.Load() }

// MemberData returns what this instance advertises in the group.
func (m *Members) MemberData() []byte {
	data, _ := json.Marshal(memberData{URL: m.Self()}) // a string field always marshals
	return data
}

// Close releases the Kafka connection.
func (m *Members) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admin.Close()
}

// Run describes the group every Refresh, and at once after Poke, until
// ctx ends.
func (m *Members) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Refresh)
	defer t.Stop()
	for {
		if err := m.refresh(); err != nil {
			m.log.Warn("failed to read the group's members", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.poke:
		}
	}
}

// Poke asks for the group to be described again soon: a rebalance
// happened, or an owner did not answer.
func (m *Members) Poke() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

// refresh describes the group and replaces the picture. A group that is
// rebalancing has no owners: goka stops every partition of every member
// until the new assignment is set up.
func (m *Members) refresh() error {
	m.mu.Lock()
	admin := m.admin
	m.mu.Unlock()
	groups, err := admin.DescribeConsumerGroups([]string{m.cfg.Group})
	if err != nil {
		m.reconnect()
		return fmt.Errorf("failed to describe group %s: %w", m.cfg.Group, err)
	}
	owners := make([]string, m.cfg.Partitions)
	var members []string
	for _, g := range groups {
		if g.GroupId != m.cfg.Group || g.Err != sarama.ErrNoError || g.State != "Stable" {
			continue
		}
		for id, member := range g.Members {
			u, parts, err := m.decode(member)
			if err != nil {
				m.log.Debug("skipping a member whose data cannot be read", "member", id, "error", err)
				continue
			}
			members = append(members, u)
			for _, p := range parts {
				if p >= 0 && p < m.cfg.Partitions {
					owners[p] = u
				}
			}
		}
	}
	m.owners.Store(&owners)
	now := time.Now()
	m.readAt.Store(&now)
	if len(members) > 0 {
		m.setStandbys(owners, members)
	}
	return nil
}

// decode reads a member's advertised URL and its partitions of the
// events topic.
func (m *Members) decode(member *sarama.GroupMemberDescription) (string, []int32, error) {
	if len(member.MemberMetadata) > maxMemberData+1024 {
		return "", nil, fmt.Errorf("member metadata of %d bytes is too large", len(member.MemberMetadata))
	}
	meta, err := member.GetMemberMetadata()
	if err != nil {
		return "", nil, fmt.Errorf("failed to decode member metadata: %w", err)
	}
	var data memberData
	if err := json.Unmarshal(meta.UserData, &data); err != nil {
		return "", nil, fmt.Errorf("failed to decode member data: %w", err)
	}
	if u, err := url.Parse(data.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("member data holds no http(s) URL: %q", data.URL)
	}
	assignment, err := member.GetMemberAssignment()
	if err != nil {
		return "", nil, fmt.Errorf("failed to decode member assignment: %w", err)
	}
	if assignment == nil {
		return data.URL, nil, nil
	}
	return data.URL, assignment.Topics[m.cfg.Topic], nil
}

// Owner returns the advertised URL of the instance that owns id's
// partition; ok is false when no owner is known (a rebalance).
func (m *Members) Owner(id string) (owner string, ok bool) {
	owners := *m.owners.Load()
	owner = owners[processor.PartitionFor(id, m.cfg.Partitions)]
	return owner, owner != ""
}

// Instances returns the advertised URLs of the instances that own
// partitions, sorted, and whether every partition has an owner.
func (m *Members) Instances() (urls []string, complete bool) {
	complete = true
	for _, owner := range *m.owners.Load() {
		if owner == "" {
			complete = false
			continue
		}
		if !slices.Contains(urls, owner) {
			urls = append(urls, owner)
		}
	}
	slices.Sort(urls)
	return urls, complete
}

// Partitions returns the partitions each instance owns, by URL.
func (m *Members) Partitions() map[string][]int32 {
	out := map[string][]int32{}
	for p, owner := range *m.owners.Load() {
		if owner != "" {
			out[owner] = append(out[owner], int32(p))
		}
	}
	return out
}
