package views

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	lookups  *prometheus.CounterVec
	updates  prometheus.Counter
	restarts prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, v *View) (*metrics, error) {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfold_view_lookups_total",
			Help: "Lookups of a customer in the view, by result (found, not_found, error).",
		}, []string{"result"}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_view_updates_total",
			Help: "Table records applied to the view, during recovery and after.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_view_restarts_total",
			Help: "Times the goka view failed and was rebuilt.",
		}),
	}
	recovered := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_view_recovered",
		Help: "1 when the view has caught up with the table, 0 otherwise.",
	}, func() float64 {
		if v.Recovered() {
			return 1
		}
		return 0
	})
	subscribers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_view_subscribers",
		Help: "Open subscriptions to view changes (waiting readers and watchers).",
	}, func() float64 { return float64(v.hub.Subscribers()) })
	keys := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_view_keys",
		Help: "Table entries held by the view, including never-registered ids that only hold decisions.",
	}, func() float64 { return float64(v.Keys()) })
	accepted := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "eventfold_view_accepted_events",
		Help: "Events ever accepted, from the table the view holds: the sum of the customers' versions. Unlike eventfold_events_folded_total it survives restarts.",
	}, func() float64 { return float64(v.Accepted()) })
	all := []prometheus.Collector{m.lookups, m.updates, m.restarts, recovered, subscribers, keys, accepted}
	if v.local != nil {
		all = append(all, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eventfold_partitions_owned",
			Help: "Partitioned mode: partitions of the table this instance holds and has recovered, and so serves.",
		}, func() float64 { return float64(len(v.local.owned())) }))
	}
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register view metrics: %w", err)
		}
	}
	for _, r := range []string{"found", "not_found", "error"} {
		m.lookups.WithLabelValues(r)
	}
	return m, nil
}
