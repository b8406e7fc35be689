package kafka_test

import (
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/kafka"
)

// TestMembership checks the instance ids and session timeouts a group
// member is started with: sarama's rules for the id, the brokers' default
// bounds for the timeout, and the timeout in effect when none is given.
func TestMembership(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		m       kafka.Membership
		version string
		wantErr string
		timeout time.Duration
	}{
		{name: "dynamic", m: kafka.Membership{}, timeout: kafka.DynamicSessionTimeout},
		{name: "static", m: kafka.Membership{InstanceID: "eventfold-partitioned-0"}, timeout: kafka.StaticSessionTimeout},
		{name: "static with a timeout", m: kafka.Membership{InstanceID: "a.b_c-1", SessionTimeout: 20 * time.Second}, timeout: 20 * time.Second},
		{name: "dynamic with a timeout", m: kafka.Membership{SessionTimeout: kafka.MinSessionTimeout}, timeout: kafka.MinSessionTimeout},
		{name: "longest id", m: kafka.Membership{InstanceID: strings.Repeat("x", 249)}, timeout: kafka.StaticSessionTimeout},
		{name: "id too long", m: kafka.Membership{InstanceID: strings.Repeat("x", 250)}, wantErr: "longer than 249"},
		{name: "id with a slash", m: kafka.Membership{InstanceID: "pod/0"}, wantErr: "illegal"},
		{name: "id with a space", m: kafka.Membership{InstanceID: "pod 0"}, wantErr: "illegal"},
		{name: "id dot", m: kafka.Membership{InstanceID: "."}, wantErr: `cannot be "." or ".."`},
		{name: "id dot dot", m: kafka.Membership{InstanceID: ".."}, wantErr: `cannot be "." or ".."`},
		{name: "timeout below the brokers' minimum", m: kafka.Membership{InstanceID: "a", SessionTimeout: 5 * time.Second}, wantErr: "must be from 6s to 5m0s"},
		{name: "timeout above the brokers' maximum", m: kafka.Membership{SessionTimeout: 6 * time.Minute}, wantErr: "must be from 6s to 5m0s"},
		{name: "static on kafka 2.3", m: kafka.Membership{InstanceID: "a"}, version: "2.3.0", timeout: kafka.StaticSessionTimeout},
		{name: "static before kafka 2.3", m: kafka.Membership{InstanceID: "a"}, version: "2.2.0", wantErr: "need Version >= 2.3"},
		{name: "dynamic before kafka 2.3", m: kafka.Membership{}, version: "2.1.0", timeout: kafka.DynamicSessionTimeout},
		{name: "negative timeout", m: kafka.Membership{SessionTimeout: -time.Second}, wantErr: "must be from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Validate(tc.version)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate(%q) = %v, want an error containing %q", tc.version, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			sc := sarama.NewConfig()
			tc.m.Apply(sc)
			g := sc.Consumer.Group
			if g.InstanceId != tc.m.InstanceID || g.Session.Timeout != tc.timeout || tc.m.Timeout() != tc.timeout {
				t.Errorf("applied instance id %q, session timeout %s (Timeout() %s); want %q, %s", g.InstanceId, g.Session.Timeout, tc.m.Timeout(), tc.m.InstanceID, tc.timeout)
			}
			// Three heartbeats fit in a session, as Kafka advises.
			if g.Heartbeat.Interval <= 0 || g.Heartbeat.Interval*3 > g.Session.Timeout {
				t.Errorf("heartbeat interval %s with session timeout %s: want at most a third", g.Heartbeat.Interval, g.Session.Timeout)
			}
		})
	}
}
