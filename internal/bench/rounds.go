package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/eventfold/eventfold/internal/kafka"
)

// GokaResult sets eventfold beside the bare goka fold (gokafold.go), on
// the same events topic in the same run.
type GokaResult struct {
	// Rounds are the folds, each system on a fresh group, the order
	// rotating from round to round.
	Rounds []GokaRound `json:"rounds"`
	// FoldEventfold and FoldGoka are the medians of the rounds' events/s;
	// FoldRatio is eventfold's over the bare goka fold's.
	FoldEventfold float64 `json:"fold_eventfold_per_second"`
	FoldGoka      float64 `json:"fold_goka_per_second"`
	FoldRatio     float64 `json:"fold_ratio"`
	// FoldEventfoldPerCPUSecond and FoldGokaPerCPUSecond are the medians
	// of the rounds' events per CPU-second of the bench process;
	// FoldCPURatio is eventfold's over the bare goka fold's.
	FoldEventfoldPerCPUSecond float64 `json:"fold_eventfold_per_cpu_second"`
	FoldGokaPerCPUSecond      float64 `json:"fold_goka_per_cpu_second"`
	FoldCPURatio              float64 `json:"fold_cpu_ratio"`
	// StateCheck compared every customer's state in round 0's bare fold
	// with the same fold applied here to the generated events.
	StateCheck StateCheck `json:"state_check"`
}

// GokaRound is one round: eventfold and the bare goka fold.
type GokaRound struct {
	First     string     `json:"first"`
	Eventfold Throughput `json:"eventfold"`
	Goka      Throughput `json:"goka"`
}

// Names of the systems that fold in rounds.
const (
	systemEventfold = "eventfold"
	systemGoka      = "goka"
	systemKStreams  = "kstreams"
)

// foldRounds folds the events topic with eventfold and its baselines (the
// bare goka fold, Kafka Streams), each on a fresh group per round, the
// order rotating from round to round so that no system always gets the
// machine after the same neighbour. Round 0's eventfold fold is the fold
// scenario's, measured before.
type foldRounds struct {
	cfg      Config
	cl       *cluster
	base     kafka.Topics
	events   *Events
	progress func(string, ...any)
	// topics the rounds made, for the run to delete.
	topics []string
}

// run measures cfg.Rounds rounds and sets the results: r.Goka when the
// bare goka fold runs, cmp's rounds when Kafka Streams runs.
func (f *foldRounds) run(ctx context.Context, r *Report, first Throughput, cmp *comparison) error {
	systems := []string{systemEventfold}
	if f.cfg.BareGoka {
		systems = append(systems, systemGoka)
		r.Goka = &GokaResult{}
	}
	if cmp != nil {
		systems = append(systems, systemKStreams)
	}
	if len(systems) == 1 {
		return nil
	}
	n := int64(f.events.Len())
	for round := range max(f.cfg.Rounds, 1) {
		order := append(slices.Clone(systems[round%len(systems):]), systems[:round%len(systems)]...)
		got := map[string]Throughput{}
		for _, s := range order {
			var err error
			switch s {
			case systemEventfold:
				got[s] = first
				if round > 0 {
					f.progress("folding with eventfold", "round", round, "order", strings.Join(order, ","))
					got[s], err = f.foldEventfold(ctx, round)
				}
			case systemGoka:
				f.progress("folding with bare goka", "round", round, "order", strings.Join(order, ","))
				got[s], err = f.foldGoka(ctx, r.Goka, round)
			case systemKStreams:
				f.progress("folding with Kafka Streams", "round", round, "threads", cmp.app.threads, "order", strings.Join(order, ","))
				got[s], err = cmp.foldKStreams(ctx, round, n)
			}
			if err != nil {
				return err
			}
		}
		if g := r.Goka; g != nil {
			g.Rounds = append(g.Rounds, GokaRound{First: firstOf(order, systemEventfold, systemGoka), Eventfold: got[systemEventfold], Goka: got[systemGoka]})
		}
		if cmp != nil {
			cmp.r.Rounds = append(cmp.r.Rounds, FoldRound{First: firstOf(order, systemEventfold, systemKStreams), Eventfold: got[systemEventfold], KStreams: got[systemKStreams]})
		}
	}
	if g := r.Goka; g != nil {
		var efs, gs []float64
		for _, fr := range g.Rounds {
			efs, gs = append(efs, fr.Eventfold.PerSec), append(gs, fr.Goka.PerSec)
		}
		g.FoldEventfold, g.FoldGoka = medianOf(efs), medianOf(gs)
		g.FoldRatio = g.FoldEventfold / g.FoldGoka
		efs, gs = nil, nil
		for _, fr := range g.Rounds {
			efs, gs = append(efs, fr.Eventfold.PerCPUSecond()), append(gs, fr.Goka.PerCPUSecond())
		}
		g.FoldEventfoldPerCPUSecond, g.FoldGokaPerCPUSecond = medianOf(efs), medianOf(gs)
		g.FoldCPURatio = g.FoldEventfoldPerCPUSecond / max(g.FoldGokaPerCPUSecond, 1e-9)
	}
	if cmp != nil {
		var efs, kss []float64
		for _, fr := range cmp.r.Rounds {
			efs, kss = append(efs, fr.Eventfold.PerSec), append(kss, fr.KStreams.PerSec)
		}
		cmp.r.FoldEventfold, cmp.r.FoldKStreams = medianOf(efs), medianOf(kss)
		cmp.r.FoldRatio = cmp.r.FoldEventfold / cmp.r.FoldKStreams
	}
	return nil
}

// firstOf is whichever of a and b comes first in order.
func firstOf(order []string, a, b string) string {
	if slices.Index(order, a) < slices.Index(order, b) {
		return a
	}
	return b
}

// roundDir makes a fresh dir for round's system; the caller removes it.
func (f *foldRounds) roundDir(system string, round int) (string, error) {
	dir := filepath.Join(f.cl.tmp, system+"-round-"+strconv.Itoa(round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create round %d's dir: %w", round, err)
	}
	return dir, nil
}

// foldEventfold folds the events topic with a fresh eventfold service of
// its own group, as the fold scenario does, and stops it.
func (f *foldRounds) foldEventfold(ctx context.Context, round int) (Throughput, error) {
	topics := f.base
	topics.Group = f.base.Group + "-r" + strconv.Itoa(round)
	f.topics = append(f.topics, topics.Table(), topics.DeadLetter())
	if _, err := kafka.Setup(ctx, f.cl.kc, topics); err != nil {
		return Throughput{}, fmt.Errorf("failed to set up round %d's topics: %w", round, err)
	}
	dir, err := f.roundDir(systemEventfold, round)
	if err != nil {
		return Throughput{}, err
	}
	defer os.RemoveAll(dir)
	svc, err := newService(ctx, f.cl.kc, topics, dir, f.cfg.ProcessorStorage, f.cfg.StorageBuffer, f.cfg.keks, http.NotFoundHandler(), f.cfg.Logger)
	if err != nil {
		return Throughput{}, err
	}
	svc.startProcessor()
	first, last, cpu, _, err := awaitFold(ctx, f.cl, svc, float64(f.events.Len()))
	if serr := svc.stop(); err == nil && serr != nil {
		err = fmt.Errorf("round %d's service failed: %w", round, serr)
	}
	if err != nil {
		return Throughput{}, err
	}
	t := throughput(int64(f.events.Len()), 0, last.Sub(first))
	t.CPUSeconds = cpu.Seconds()
	return t, nil
}

// foldGoka folds the events topic with the bare goka fold on a fresh
// group. Round 0 also checks every customer's state.
func (f *foldRounds) foldGoka(ctx context.Context, g *GokaResult, round int) (Throughput, error) {
	group := gokaGroup(f.base.Group, round)
	f.topics = append(f.topics, group+"-table")
	// goka creates its table topic when it starts and reads its offsets
	// right away; on the shared broker that read failed in a few runs
	// ("not the leader ... metadata is out of date") and stopped the
	// fold. Created here, and read back until its partitions have
	// leaders, the topic is ready when goka finds it.
	events, _, err := f.cl.endOffsets(ctx, f.base.Events)
	if err != nil {
		return Throughput{}, err
	}
	if err := f.cl.createReadyTopic(ctx, group+"-table", len(events), map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}); err != nil {
		return Throughput{}, err
	}
	dir, err := f.roundDir(systemGoka, round)
	if err != nil {
		return Throughput{}, err
	}
	defer os.RemoveAll(dir)
	gf, err := startGokaFold(ctx, f.cl.kc, f.cfg.Logger, f.base.Events, group, dir)
	if err != nil {
		return Throughput{}, err
	}
	first, last, cpu, err := gf.await(ctx, f.cl, int64(f.events.Len()))
	if err == nil && round == 0 {
		f.progress("comparing every customer's state in the bare goka fold with the events folded here", "customers", len(f.events.Customers))
		var diffs []string
		if g.StateCheck, diffs, err = checkBareStates(f.events, gf.state); err == nil && g.StateCheck.Mismatches > 0 {
			err = fmt.Errorf("the bare goka fold kept other states than its events make: %d of %d customers differ, e.g. %v",
				g.StateCheck.Mismatches, g.StateCheck.Customers, diffs)
		}
	}
	if serr := gf.stop(); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return Throughput{}, err
	}
	t := throughput(int64(f.events.Len()), 0, max(last.Sub(first), time.Millisecond))
	t.CPUSeconds = cpu.Seconds()
	return t, nil
}
