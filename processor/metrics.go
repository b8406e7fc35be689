package processor

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	folded       *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	duplicates   prometheus.Counter
	plaintext    prometheus.Counter
	keysErased   prometheus.Counter
	foldDuration prometheus.Histogram
	restarts     prometheus.Counter
	tableWrites  prometheus.Counter
	rebalances   prometheus.Counter
	recovered    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		folded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfold_events_folded_total",
			Help: "Events accepted by the fold, by event type.",
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfold_events_rejected_total",
			Help: "Events rejected, by reason (malformed, wrong_partition and state_too_large also go to the dead-letter topic).",
		}, []string{"reason"}),
		plaintext: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_plaintext_events_total",
			Help: "Decided events whose personal data arrived unsealed: it stays readable in the events topic after an erasure until eventfold redact rewrites the topic.",
		}),
		keysErased: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_data_keys_erased_total",
			Help: "Tombstones of data keys written to the keys topic by erasures.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventfold_dlq_records_total",
			Help: "Records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_events_duplicate_total",
			Help: "Events ignored as duplicates: an event id already decided or a redelivered offset.",
		}),
		foldDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventfold_fold_duration_seconds",
			Help:    "Time to decode, fold and store one event.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 4, 10),
		}),
		tableWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_table_writes_total",
			Help: "Customer states written to the group table.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_processor_restarts_total",
			Help: "Times the goka processor failed and was rebuilt.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_processor_rebalances_total",
			Help: "Partition assignments received by the processor.",
		}),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventfold_processor_recovered_records_total",
			Help: "Records of the table topic read into the processor's local copy when it started or got a partition: those after the copy's checkpoint.",
		}),
	}
	for _, c := range []prometheus.Collector{m.folded, m.rejected, m.deadLetters, m.duplicates, m.plaintext, m.keysErased, m.foldDuration, m.restarts, m.rebalances, m.tableWrites, m.recovered} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("failed to register processor metrics: %w", err)
		}
	}
	// Expose every label value from the start, so rates work from zero.
	for _, t := range EventTypes {
		m.folded.WithLabelValues(t)
	}
	for _, r := range Reasons {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range DeadLetterReasons {
		m.deadLetters.WithLabelValues(r)
	}
	return m, nil
}
