package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Bounds of GET /cluster: it asks every other instance for its status,
// so one request costs a request to each of them.
const (
	// MaxClusterInstances bounds the instances GET /cluster asks; more
	// are listed, not asked.
	MaxClusterInstances = 64
	// ClusterAskTimeout bounds the wait for one instance's status: a
	// member that does not answer in time is shown unreachable.
	ClusterAskTimeout = 2 * time.Second
	// maxInstanceStatusBytes bounds the body read from one instance: a
	// status names each partition at most once per role.
	maxInstanceStatusBytes = 1 << 20
)

// Copy roles of an InstanceStatus.
const (
	// RoleOwner is a partitioned instance's own copy, the processor's
	// store; its lag is the events its processor has not folded.
	RoleOwner = "owner"
	// RoleStandby is a warm copy of a partition another instance owns;
	// its lag is the table records it has not applied.
	RoleStandby = "standby"
	// RoleReplica is a replica's view of the whole table; its lag is the
	// table records the view has not applied.
	RoleReplica = "replica"
)

// ClusterStatus tells the cluster routes about this instance and the
// membership it reads (an internal/service adapter).
type ClusterStatus interface {
	// Instance returns this instance's mode, the table entries it holds
	// and the copies of partitions it serves now, each with its lag.
	Instance(ctx context.Context) InstanceStatus
	// Membership returns the membership as last read from the consumer
	// group; ok is false in replica mode, which reads none.
	Membership() (m Membership, ok bool)
}

// Membership is who owns and stands by for each partition, as an
// instance last read the consumer group.
type Membership struct {
	ReadAt   time.Time
	Members  []string   // advertised URLs, sorted
	Owners   []string   // by partition; "" while none is known
	Standbys [][]string // by partition
}

// InstanceStatus is the body of GET /cluster/instance.
type InstanceStatus struct {
	URL    string          `json:"url"`
	Mode   string          `json:"mode"`
	Ready  bool            `json:"ready"`
	Keys   int64           `json:"keys"`
	Copies []PartitionCopy `json:"copies"`
}

// PartitionCopy is one copy of a partition an instance serves; Lag is
// left out when it could not be read.
type PartitionCopy struct {
	Partition int32  `json:"partition"`
	Role      string `json:"role"`
	Lag       *int64 `json:"lag,omitempty"`
}

// ClusterView is the body of GET /cluster: the instances, whether each
// answered, and each partition's owner and standbys with their lag.
type ClusterView struct {
	Mode       string             `json:"mode"`
	Self       string             `json:"self"`
	ReadAt     *time.Time         `json:"membership_read_at,omitempty"`
	Complete   bool               `json:"complete"`
	Instances  []ClusterInstance  `json:"instances"`
	Partitions []ClusterPartition `json:"partitions"`
}

// ClusterInstance is one instance of a ClusterView, with the partitions
// the membership gives it; Keys is what it reported, when it answered.
type ClusterInstance struct {
	URL       string  `json:"url"`
	Self      bool    `json:"self"`
	Reachable bool    `json:"reachable"`
	Error     string  `json:"error,omitempty"`
	Ready     bool    `json:"ready"`
	Keys      *int64  `json:"keys,omitempty"`
	Owned     []int32 `json:"owned"`
	Standby   []int32 `json:"standby"`
}

// ClusterPartition is one partition of a ClusterView; a lag is left out
// when its instance did not report it.
type ClusterPartition struct {
	Partition int32         `json:"partition"`
	Owner     string        `json:"owner,omitempty"`
	OwnerLag  *int64        `json:"owner_lag,omitempty"`
	Standbys  []StandbyCopy `json:"standbys"`
}

// StandbyCopy is one standby copy of a ClusterPartition.
type StandbyCopy struct {
	URL string `json:"url"`
	Lag *int64 `json:"lag,omitempty"`
}

// clusterRoutes serves GET /cluster and GET /cluster/instance.
type clusterRoutes struct {
	s      *Server
	status ClusterStatus
	// gather shares one round of asking the instances between the
	// requests that arrive while it runs: a page polled by many browsers
	// costs the other instances one request each per round, not one per
	// browser.
	gather singleflight.Group
	// local shares the reading of this instance's own figures (an offset
	// read from Kafka per partition it serves) between the requests that
	// arrive while it runs.
	local singleflight.Group
}

// instance answers GET /cluster/instance: this instance's own figures.
func (c *clusterRoutes) instance(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, c.own(r.Context()))
}

// own returns this instance's figures, shared by the requests that ask
// at once.
func (c *clusterRoutes) own(ctx context.Context) InstanceStatus {
	v, _, _ := c.local.Do("", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ClusterAskTimeout)
		defer cancel()
		return c.read(ctx), nil
	})
	return v.(InstanceStatus)
}

func (c *clusterRoutes) read(ctx context.Context) InstanceStatus {
	st := c.status.Instance(ctx)
	st.URL = c.s.AdvertisedURL()
	st.Ready, _ = c.s.ready()
	if st.Copies == nil {
		st.Copies = []PartitionCopy{}
	}
	return st
}

// cluster answers GET /cluster from the membership and every member's
// own status, asked in parallel with a short timeout.
func (c *clusterRoutes) cluster(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	// The round is shared by the callers of one token, so that a round
	// never asks with another client's token. Without read tokens the
	// header grants nothing, and keying by it would let a client that
	// sends a new value with each request start a round of requests to
	// every instance each time: all share one round then.
	key := auth
	if len(c.s.cfg.ReadTokens) == 0 {
		key = ""
	}
	v, _, _ := c.gather.Do(key, func() (any, error) {
		// The round outlives a client that goes away: others share it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), ClusterAskTimeout+time.Second)
		defer cancel()
		return c.view(ctx, auth), nil
	})
	writeJSON(w, http.StatusOK, v)
}

func (c *clusterRoutes) view(ctx context.Context, auth string) ClusterView {
	self := c.own(ctx)
	m, partitioned := c.status.Membership()
	if !partitioned {
		return replicaView(self)
	}
	out := ClusterView{Mode: self.Mode, Self: self.URL, Complete: true, Instances: []ClusterInstance{}}
	if !m.ReadAt.IsZero() {
		out.ReadAt = &m.ReadAt
	}
	members := m.Members
	if !slices.Contains(members, self.URL) {
		members = append(slices.Clone(members), self.URL) // not in the group yet, or left it
		slices.Sort(members)
	}
	statuses := make([]*InstanceStatus, len(members))
	errs := make([]string, len(members))
	var wg sync.WaitGroup
	for i, u := range members {
		switch {
		case u == self.URL:
			statuses[i] = &self
		case i >= MaxClusterInstances:
			errs[i] = fmt.Sprintf("not asked: more than %d instances", MaxClusterInstances)
		default:
			wg.Go(func() {
				st, err := c.ask(ctx, u, auth)
				if err != nil {
					errs[i] = err.Error()
					return
				}
				statuses[i] = st
			})
		}
	}
	wg.Wait()
	lags := map[string]map[int32]*int64{} // by URL and role+partition
	for i, u := range members {
		in := ClusterInstance{URL: u, Self: u == self.URL, Error: errs[i], Owned: []int32{}, Standby: []int32{}}
		if st := statuses[i]; st != nil {
			in.Reachable, in.Ready, in.Keys = true, st.Ready, &st.Keys
			lags[u] = copyLags(st.Copies)
		}
		for p, owner := range m.Owners {
			if owner == u {
				in.Owned = append(in.Owned, int32(p))
			}
			if slices.Contains(m.Standbys[p], u) {
				in.Standby = append(in.Standby, int32(p))
			}
		}
		out.Instances = append(out.Instances, in)
	}
	out.Partitions = make([]ClusterPartition, len(m.Owners))
	for p, owner := range m.Owners {
		part := ClusterPartition{Partition: int32(p), Owner: owner, Standbys: []StandbyCopy{}}
		if owner == "" {
			out.Complete = false
		} else {
			part.OwnerLag = lags[owner][copyKey(RoleOwner, int32(p))]
		}
		for _, u := range m.Standbys[p] {
			part.Standbys = append(part.Standbys, StandbyCopy{URL: u, Lag: lags[u][copyKey(RoleStandby, int32(p))]})
		}
		out.Partitions[p] = part
	}
	return out
}

// replicaView is GET /cluster of a replica: it reads no membership, and
// serves every partition from its own view.
func replicaView(self InstanceStatus) ClusterView {
	in := ClusterInstance{URL: self.URL, Self: true, Reachable: true, Ready: self.Ready, Keys: &self.Keys, Owned: []int32{}, Standby: []int32{}}
	out := ClusterView{Mode: self.Mode, Self: self.URL, Complete: true, Partitions: []ClusterPartition{}}
	for _, cp := range self.Copies {
		in.Owned = append(in.Owned, cp.Partition)
		out.Partitions = append(out.Partitions, ClusterPartition{Partition: cp.Partition, Owner: self.URL, OwnerLag: cp.Lag, Standbys: []StandbyCopy{}})
	}
	out.Instances = []ClusterInstance{in}
	return out
}

// copyKey keys a copy's lag by its role and partition: an instance
// reports an owned and a standby copy of a partition apart.
func copyKey(role string, p int32) int32 {
	if role == RoleStandby {
		return -1 - p
	}
	return p
}

func copyLags(copies []PartitionCopy) map[int32]*int64 {
	out := make(map[int32]*int64, len(copies))
	for _, cp := range copies {
		out[copyKey(cp.Role, cp.Partition)] = cp.Lag
	}
	return out
}

// ask reads another instance's GET /cluster/instance, with the client's
// token, as a forwarded request.
func (c *clusterRoutes) ask(ctx context.Context, u, auth string) (*InstanceStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, ClusterAskTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/cluster/instance", nil)
	if err != nil {
		return nil, fmt.Errorf("failed to build the request: %w", err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set(HeaderForwarded, c.s.AdvertisedURL())
	resp, err := c.s.forward.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %s", resp.Status)
	}
	var st InstanceStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxInstanceStatusBytes)).Decode(&st); err != nil {
		return nil, fmt.Errorf("failed to read its status: %w", err)
	}
	return &st, nil
}
