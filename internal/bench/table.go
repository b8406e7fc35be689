package bench

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Print writes the report as tables, one per scenario, then the targets.
func (r *Report) Print(out io.Writer) error {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	m := r.Machine
	p("eventfold bench, %s, %.0f s", r.Started.UTC().Format("2006-01-02 15:04:05 UTC"), r.Seconds)
	p("machine:\t%d CPUs, %s memory, %s %s/%s", m.CPUs, gibibytes(m.MemoryBytes), m.GoVersion, m.OS, m.Arch)
	p("broker:\t%s (%s, %s)", r.Broker.Label, r.Broker.Kind, strings.Join(r.Broker.Brokers, ","))
	s := r.Setup
	p("data:\t%s events over %s customers, %d partitions; topic %s, group %s; processor storage %s", count(float64(s.Events)), count(float64(s.Customers)),
		s.Partitions, s.EventsTopic, s.Group, s.ProcessorStorage)
	if s.Erasure {
		p("erasure:\ton: personal fields sealed per customer (sealing the events took %.1f s before they were produced)", r.SealSeconds)
	} else {
		p("erasure:\toff: personal fields in plaintext")
	}
	if r.Broker.Kind == BrokerEmbedded {
		p("note:\tthe broker runs in the bench process: its RSS and CPU count in every figure of this process")
	}

	if f := r.Fold; f != nil {
		p("")
		p("fold (processor storage: %s)\tevents/s\tseconds\tvs bare consumer", f.ProcessorStorage)
		p("  producer, kgo (baseline 1)\t%s\t%.2f\t%s", count(f.Producer.PerSec), f.Producer.Seconds, percent(f.Producer.PerSec/f.BareConsumer.PerSec))
		p("  bare consumer, kgo (baseline 2)\t%s\t%.2f\t100%%", count(f.BareConsumer.PerSec), f.BareConsumer.Seconds)
		p("  bare consumer, sarama\t%s\t%.2f\t%s", count(f.SaramaConsumer.PerSec), f.SaramaConsumer.Seconds, percent(f.SaramaConsumer.PerSec/f.BareConsumer.PerSec))
		p("  processor fold, first record to last table write\t%s\t%.2f\t%s", count(f.Fold.PerSec), f.Fold.Seconds, percent(f.Ratio))
		p("  processor start-up (group join, empty table)\t\t%.2f\t", f.StartupSeconds)
		p("  CPU during the fold\tbench process %.1f s (%s, %s events per CPU-second); whole machine %.2f of %d cores busy", f.FoldCPUSeconds,
			cores(f.FoldCPUSeconds, f.Fold.Seconds), count(float64(f.Events)/max(f.FoldCPUSeconds, 1e-3)), f.FoldMachineBusyCores, r.Machine.CPUs)
		p("  outcomes\taccepted %s, rejected %s (dead letters %s), duplicate %s; %s table writes", count(f.Outcomes["accepted"]), count(f.Outcomes["rejected"]),
			count(f.Outcomes["dead_letter"]), count(f.Outcomes["duplicate"]), count(float64(f.TableWrites)))
		p("  event bytes\t%s (%d B average)", megabytes(float64(f.EventBytes)), f.EventBytes/int64(max(f.Events, 1)))
		printUsage(p, f.Usage)
	}
	if v := r.Recover; v != nil {
		p("")
		p("recover (%s table records, %s keys)\trecords/s\tkeys/s\tseconds\tvs bare consumer\tretained heap", count(float64(v.TableRecords)), count(float64(v.Keys)))
		p("  bare consumer of the table, kgo (baseline)\t%s\t\t%.2f\t100%%\t", count(v.BareConsumer.PerSec), v.BareConsumer.Seconds)
		p("  fresh view, leveldb (full copy)\t%s\t%s\t%.2f\t%s\t%s", count(v.LevelDB.RecordsPerSec), count(v.LevelDB.KeysPerSec), v.LevelDB.Seconds, percent(v.Ratio), megabytes(float64(v.LevelDB.RetainedHeapBytes)))
		p("  fresh view, in memory\t%s\t%s\t%.2f\t%s\t%s", count(v.InMemory.RecordsPerSec), count(v.InMemory.KeysPerSec), v.InMemory.Seconds,
			percent(v.InMemory.RecordsPerSec/v.BareConsumer.PerSec), megabytes(float64(v.InMemory.RetainedHeapBytes)))
		if sv := v.Serve; sv != nil {
			p("  eventfold serve restarted (child process)\tready in %.2f s, peak RSS %s, RSS %s", sv.ReadySeconds, megabytes(float64(sv.PeakRSSBytes)), megabytes(float64(sv.RSSBytes)))
		}
		if sv := v.ServeAgain; sv != nil {
			p("  eventfold serve restarted on its data dir\tready in %.2f s, peak RSS %s, RSS %s", sv.ReadySeconds, megabytes(float64(sv.PeakRSSBytes)), megabytes(float64(sv.RSSBytes)))
		}
		printUsage(p, v.Usage)
	}
	if l := r.Lookup; l != nil {
		p("")
		p("lookup (%d clients, %s, %d B bodies)\trequests/s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\tvs baseline\toutcomes", l.Clients, seconds(l.DurationSeconds), l.BodyBytes)
		printLatency(p, "  fixed body, same server (baseline)", l.Baseline, "100%")
		printLatency(p, "  GET /customers/{id}", l.Service, percent(l.Ratio))
		printUsage(p, l.Usage)
	}
	if wr := r.Write; wr != nil {
		p("")
		p("write (%d writers, %s)\twrites/s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\t\toutcomes", wr.Writers, seconds(wr.DurationSeconds))
		printLatency(p, "  publish to Kafka only (baseline)", wr.Baseline, "")
		printLatency(p, "  POST /customers/{id}/events, If-Match", wr.Service, "")
		printUsage(p, wr.Usage)
	}
	if g := r.Goka; g != nil {
		printGoka(p, g)
	}
	if k := r.KStreams; k != nil {
		printKStreams(p, k)
	}
	if r.KStreamsSkipped != "" {
		p("")
		p("Kafka Streams baseline skipped:\t%s", r.KStreamsSkipped)
	}
	p("")
	p("targets\tmeasured\tverdict\t")
	for _, t := range r.Targets {
		p("  %s\t%s\t%s\t%s", t.Name, t.Got, t.Verdict, t.Note)
	}
	return w.Flush()
}

func printLatency(p func(string, ...any), name string, l Latency, ratio string) {
	p("%s\t%s\t%.2f\t%.2f\t%.2f\t%.1f\t%s\t%s", name, count(l.PerSec), l.P50ms, l.P99ms, l.P999ms, l.MaxMs, ratio, outcomes(l.Outcomes))
}

func printUsage(p func(string, ...any), u Usage) {
	p("  bench process\tpeak RSS %s, peak heap in use %s; CPU %.1f s in %.1f s (%s; machine %.2f busy)", megabytes(float64(u.PeakRSSBytes)), megabytes(float64(u.PeakHeapInuseBytes)),
		u.CPUSeconds, u.WallSeconds, cores(u.CPUSeconds, u.WallSeconds), u.MachineBusyCores)
}

func cores(cpu, wall float64) string { return fmt.Sprintf("%.2f cores", cpu/max(wall, 1e-3)) }

func outcomes(o map[string]int64) string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + strconv.FormatInt(o[k], 10)
	}
	return strings.Join(parts, " ")
}

// count formats a number with thousands separators.
func count(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func percent(ratio float64) string { return fmt.Sprintf("%.1f%%", 100*ratio) }

func megabytes(b float64) string { return fmt.Sprintf("%.0f MB", b/1e6) }

func gibibytes(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) + " s" }

func printGoka(p func(string, ...any), g *GokaResult) {
	p("")
	p("eventfold and a bare goka fold, same topic\teventfold\tbare goka\teventfold / bare goka")
	for i, fr := range g.Rounds {
		p("  fold round %d (%s first), events/s\t%s\t%s\t%.2fx", i+1, fr.First, count(fr.Eventfold.PerSec), count(fr.Goka.PerSec), fr.Eventfold.PerSec/max(fr.Goka.PerSec, 1e-9))
	}
	p("  fold, median events/s\t%s\t%s\t%.2fx", count(g.FoldEventfold), count(g.FoldGoka), g.FoldRatio)
	for i, fr := range g.Rounds {
		p("  fold round %d, events per CPU-second of the bench process\t%s\t%s\t%.2fx", i+1, count(fr.Eventfold.PerCPUSecond()), count(fr.Goka.PerCPUSecond()),
			fr.Eventfold.PerCPUSecond()/max(fr.Goka.PerCPUSecond(), 1e-9))
	}
	p("  fold, median events per CPU-second\t%s\t%s\t%.2fx", count(g.FoldEventfoldPerCPUSecond), count(g.FoldGokaPerCPUSecond), g.FoldCPURatio)
	p("  state check of the bare fold\t%d customers compared, %d differ", g.StateCheck.Customers, g.StateCheck.Mismatches)
}

func printKStreams(p func(string, ...any), k *KStreamsResult) {
	p("")
	p("eventfold and Kafka Streams (%d threads, -Xmx%dm), same topic\teventfold\tKafka Streams\teventfold / Kafka Streams", k.Threads, k.HeapMiB)
	for i, fr := range k.Rounds {
		p("  fold round %d (%s first), events/s\t%s\t%s\t%.2fx", i+1, fr.First, count(fr.Eventfold.PerSec), count(fr.KStreams.PerSec), fr.Eventfold.PerSec/max(fr.KStreams.PerSec, 1e-9))
	}
	p("  fold, median events/s\t%s\t%s\t%.2fx", count(k.FoldEventfold), count(k.FoldKStreams), k.FoldRatio)
	p("  Kafka Streams peak RSS over the folds\t\t%s\t", megabytes(float64(k.FoldPeakRSSBytes)))
	for _, rp := range []struct {
		name string
		p    ReadyPair
	}{{"restore (empty local state), ready in s", k.Restore}, {"restart (own local state), ready in s", k.Restart}} {
		p("  %s\t%.2f\t%.2f\t%.2fx keys/s", rp.name, rp.p.Eventfold.Seconds, rp.p.KStreams.Seconds, rp.p.Ratio)
		p("    peak RSS\t%s\t%s\t", megabytes(float64(rp.p.Eventfold.PeakRSSBytes)), megabytes(float64(rp.p.KStreams.PeakRSSBytes)))
	}
	if l := k.Lookup; l != nil {
		p("  lookup at %d clients, requests/s\t%s\t%s\t%.2fx", l.Clients, count(l.Eventfold.PerSec), count(l.KStreams.PerSec), l.Ratio)
		p("    p50 / p99 ms\t%.2f / %.2f\t%.2f / %.2f\t", l.Eventfold.P50ms, l.Eventfold.P99ms, l.KStreams.P50ms, l.KStreams.P99ms)
	}
	p("  state check\t%d customers compared, %d differ", k.StateCheck.Customers, k.StateCheck.Mismatches)
}
