package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	assembly "github.com/eventfold/eventfold/internal/service"
)

// Scenario names, in the order they run: recover's view serves lookup and
// write, and the serve restart needs the in-process service stopped.
const (
	ScenarioFold    = "fold"
	ScenarioRecover = "recover"
	ScenarioLookup  = "lookup"
	ScenarioWrite   = "write"
)

// Where the processor keeps its table copy.
const (
	StorageLevelDB = "leveldb"
	StorageMemory  = "memory"
)

// Scenarios lists every scenario in running order.
var Scenarios = []string{ScenarioFold, ScenarioRecover, ScenarioLookup, ScenarioWrite}

// Config configures one bench run.
type Config struct {
	// Brokers are Kafka's bootstrap brokers; empty starts the embedded
	// kfake broker on a free port with a temporary data dir.
	Brokers []string
	// BrokerLabel names the broker in the report, e.g. "Apache Kafka
	// 4.4.0"; empty means "embedded kfake" or "Kafka at <brokers>".
	BrokerLabel string
	// KafkaVersion is the protocol version sarama speaks.
	KafkaVersion string
	// Partitions of the topics the run creates.
	Partitions int
	// Events are produced over Customers; every customer is registered,
	// so Events must be at least Customers.
	Events    int
	Customers int
	// ProcessorStorage is where the in-process processor keeps its table
	// copy: StorageLevelDB, as serve does, or StorageMemory.
	ProcessorStorage string
	// StorageBuffer is the bytes of table writes the processor and the
	// view each hold in memory before writing them to leveldb, as serve's
	// --storage-buffer-mib; 0 is serve's default.
	StorageBuffer int
	// Clients issue lookups concurrently; Writers post events.
	Clients int
	Writers int
	// Duration of each load: lookups, then writes, and each of their
	// baselines.
	Duration time.Duration
	// Scenarios to measure; the fold runs anyway when another scenario
	// needs its table.
	Scenarios []string
	// Seed makes the events deterministic.
	Seed int64
	// KeepTopics leaves the run's topics on an external broker; by
	// default they are deleted at the end.
	KeepTopics bool
	// ServeBinary is an eventfold binary to restart the service with, as
	// a child process, for its readiness time and peak RSS. Empty skips
	// that measurement.
	ServeBinary string
	// FoldProfile, when set, receives a CPU profile of the fold: from the
	// processor's start to its last table write.
	FoldProfile io.Writer
	// RecoverProfile, when set, receives a CPU profile of the leveldb
	// view's recovery: from its start to Recovered.
	RecoverProfile io.Writer
	// LookupProfile, when set, receives a CPU profile of the lookup
	// scenario, its baseline rounds included.
	LookupProfile io.Writer
	// KStreams runs the Kafka Streams baseline beside eventfold (it
	// needs java and mvn); KStreamsBuildDir holds its Maven build
	// (kstreams/) and Maven's local repository (m2/); KStreamsHeapMiB is
	// its JVM's -Xmx. Rounds is how many times each system folds the
	// events topic, the order alternating.
	KStreams         bool
	KStreamsBuildDir string
	KStreamsHeapMiB  int
	Rounds           int
	// Erasure runs the service with erasure on, as serve runs by default:
	// a KEK made for the run, the events' personal fields sealed with
	// each customer's data key before they are produced (as eventfold
	// produce does; the sealing is not timed), lookups opening them and
	// writes sealing them. Off, everything is plaintext.
	Erasure bool
	keks    *keys.KEKs // the run's KEK when Erasure is on, made by Run
	// BareGoka runs the bare goka fold (gokafold.go) beside eventfold's,
	// in the same rounds as Kafka Streams.
	BareGoka bool
	// Logger receives the service's logs; Progress says what the bench
	// is doing.
	Logger   *slog.Logger
	Progress *slog.Logger
}

// DefaultConfig returns the defaults of `eventfold bench`.
func DefaultConfig() Config {
	return Config{
		KafkaVersion:     kafka.DefaultVersion,
		Partitions:       6,
		Events:           1_000_000,
		Customers:        100_000,
		ProcessorStorage: StorageLevelDB,
		Clients:          64,
		Writers:          16,
		Duration:         10 * time.Second,
		Scenarios:        slices.Clone(Scenarios),
		Seed:             1,
		KStreamsBuildDir: ".build",
		KStreamsHeapMiB:  256,
		Rounds:           3,
		BareGoka:         true,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Partitions < 1 || c.Partitions > 10000:
		return fmt.Errorf("partitions %d must be from 1 to 10000", c.Partitions)
	case c.Customers < 1:
		return fmt.Errorf("customers %d must be positive", c.Customers)
	case c.Events < c.Customers:
		return fmt.Errorf("events %d must be at least customers %d: every customer is registered by its first event", c.Events, c.Customers)
	case c.Clients < 1 || c.Writers < 1:
		return errors.New("clients and writers must be positive")
	case c.StorageBuffer < 0 || c.StorageBuffer > assembly.MaxStorageBuffer:
		return fmt.Errorf("storage buffer of %d bytes must be from 0 (the default) to %d", c.StorageBuffer, assembly.MaxStorageBuffer)
	case c.Duration <= 0:
		return fmt.Errorf("duration %s must be positive", c.Duration)
	case len(c.Scenarios) == 0:
		return errors.New("no scenarios")
	case c.BareGoka && c.Rounds < 1:
		return fmt.Errorf("the bare goka fold needs rounds ≥ 1 (%d)", c.Rounds)
	case c.KStreams && (c.Rounds < 1 || c.KStreamsHeapMiB < 16 || c.KStreamsBuildDir == ""):
		return fmt.Errorf("the Kafka Streams baseline needs rounds ≥ 1 (%d), a heap of at least 16 MiB (%d) and a build dir", c.Rounds, c.KStreamsHeapMiB)
	case c.ProcessorStorage != StorageLevelDB && c.ProcessorStorage != StorageMemory:
		return fmt.Errorf("processor storage %q is not %s or %s", c.ProcessorStorage, StorageLevelDB, StorageMemory)
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("unknown scenario %q: choose from %s", s, strings.Join(Scenarios, ","))
		}
	}
	return nil
}

func (c Config) runs(scenario string) bool { return slices.Contains(c.Scenarios, scenario) }

// ParseScenarios reads a comma-separated scenario list; "all" or empty
// means every scenario.
func ParseScenarios(s string) ([]string, error) {
	if s == "" || s == "all" {
		return slices.Clone(Scenarios), nil
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !slices.Contains(Scenarios, part) {
			return nil, fmt.Errorf("unknown scenario %q: choose from %s", part, strings.Join(Scenarios, ","))
		}
		if !slices.Contains(out, part) {
			out = append(out, part)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scenarios")
	}
	return out, nil
}
