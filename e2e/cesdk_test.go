package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	ceprotocol "github.com/cloudevents/sdk-go/v2/protocol"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/testing/testkit"
	"github.com/eventfold/eventfold/processor"
)

// ceSDK is a producer written with a CloudEvents SDK: it reads each
// line's structured JSON with the SDK's own JSON event format and writes
// it with the SDK's own Kafka binding in the content mode given.
type ceSDK struct {
	name    string
	seed    int64
	prepare func(t *testing.T) func(t *testing.T, brokers, topic string, mode processor.ContentMode, lines []testkit.Line)
}

var ceSDKs = []ceSDK{
	{"go", 301, func(*testing.T) func(*testing.T, string, string, processor.ContentMode, []testkit.Line) {
		return produceGoSDK
	}},
	{"python", 302, preparePythonSDK},
	{"java", 303, prepareJavaSDK},
	// Not an SDK: eventfold's own produce command, whose --content-mode
	// must write what the processor reads.
	{"eventfold-produce", 304, prepareProduceCommand},
}

// TestCloudEventsSDKProducers is issue 14's proof: events written by the
// Go, Python and Java CloudEvents SDKs, each in binary and in structured
// mode, fold to the reference fold, on kfake and on Apache Kafka. Before
// binary mode every binary record was dead-lettered ("specversion is
// required") and no customer of those producers existed.
func TestCloudEventsSDKProducers(t *testing.T) {
	t.Parallel()
	produce := map[string]func(*testing.T, string, string, processor.ContentMode, []testkit.Line){}
	for _, sdk := range ceSDKs {
		produce[sdk.name] = sdk.prepare(t)
	}
	forEachBroker(t, func(t *testing.T, p *pipeline) {
		for _, sdk := range ceSDKs {
			for i, mode := range []processor.ContentMode{processor.ContentModeBinary, processor.ContentModeStructured} {
				t.Run(sdk.name+"/"+string(mode), func(t *testing.T) {
					lines := testkit.Generate(sdk.seed*10+int64(i), 15, 120)
					produce[sdk.name](t, p.broker, p.topics.Events, mode, lines)
					p.client.AwaitFold(t, testkit.ReferenceFold(t, lines), 90*time.Second)
				})
			}
		}
		if dead := sumCounter(t, p.reg, "eventfold_dlq_records_total"); dead != 0 {
			t.Errorf("%v records dead-lettered, want none", dead)
		}
	})
}

// produceGoSDK sends with github.com/cloudevents/sdk-go's sarama binding.
// Its key mapping takes the record key from the partitionkey extension;
// sarama is given the murmur2 partitioner of eventfold's contract.
func produceGoSDK(t *testing.T, brokers, topic string, mode processor.ContentMode, lines []testkit.Line) {
	t.Helper()
	kc := kafka.DefaultConfig()
	kc.Brokers = []string{brokers}
	cfg := kc.ProducerConfig(processor.NewMurmur2Hasher)
	cfg.Producer.Return.Successes = true // a sync producer's requirement
	sender, err := kafka_sarama.NewSender(kc.Brokers, cfg, topic)
	if err != nil {
		t.Fatalf("failed to start the Go SDK's sender: %v", err)
	}
	defer sender.Close(context.Background())
	ctx := binding.WithForceBinary(context.Background())
	if mode == processor.ContentModeStructured {
		ctx = binding.WithForceStructured(context.Background())
	}
	for i, l := range lines {
		var e event.Event
		if err := json.Unmarshal(l.Value, &e); err != nil {
			t.Fatalf("line %d: the Go SDK cannot read it: %v", i+1, err)
		}
		e.SetExtension("partitionkey", l.Key)
		if res := sender.Send(ctx, binding.ToMessage(&e)); !ceprotocol.IsACK(res) {
			t.Fatalf("line %d: the Go SDK failed to send: %v", i+1, res)
		}
	}
}

func preparePythonSDK(t *testing.T) func(*testing.T, string, string, processor.ContentMode, []testkit.Line) {
	python := venvProgram(t, "python", "Python with cloudevents and confluent-kafka")
	return func(t *testing.T, brokers, topic string, mode processor.ContentMode, lines []testkit.Line) {
		out, _ := rkaRun(t, tsvLines(t, lines), python, filepath.Join("testdata", "produce_confluent.py"), brokers, topic, string(mode))
		if got := strings.TrimSpace(out); got != fmt.Sprint(len(lines)) {
			t.Errorf("produce_confluent.py delivered %q records, want %d", got, len(lines))
		}
	}
}

func prepareProduceCommand(t *testing.T) func(*testing.T, string, string, processor.ContentMode, []testkit.Line) {
	bin := binBuild(t)
	return func(t *testing.T, brokers, topic string, mode processor.ContentMode, lines []testkit.Line) {
		out := command{path: bin, args: []string{"produce", "--erasure=off", "--brokers", brokers, "--events-topic", topic, "--content-mode", string(mode)},
			stdin: valueLines(lines)}.succeed(t).output
		if want := fmt.Sprintf("produced %d events", len(lines)); !strings.Contains(out, want) {
			t.Errorf("eventfold produce said %q, want %q", out, want)
		}
	}
}

func prepareJavaSDK(t *testing.T) func(*testing.T, string, string, processor.ContentMode, []testkit.Line) {
	classpath := buildJavaSDKProducer(t)
	return func(t *testing.T, brokers, topic string, mode processor.ContentMode, lines []testkit.Line) {
		out, _ := rkaRun(t, tsvLines(t, lines), "java", "-cp", classpath, "eventfold.CeProduce", brokers, topic, strings.ToUpper(string(mode)))
		if got := strings.TrimSpace(out); got != fmt.Sprint(len(lines)) {
			t.Errorf("CeProduce delivered %q records, want %d", got, len(lines))
		}
	}
}

// buildJavaSDKProducer builds e2e/testdata/cesdk-java with Maven into
// .build/cesdk-java, its dependencies from Maven Central cached in
// .build/m2, and returns the classpath to run it. A build whose sources
// have not changed since is reused, so a warm run costs no Maven start.
func buildJavaSDKProducer(t *testing.T) string {
	t.Helper()
	root := testkit.RepoRoot(t)
	src := filepath.Join(root, "e2e", "testdata", "cesdk-java")
	out := filepath.Join(root, ".build", "cesdk-java")
	sum := sha256.New()
	for _, f := range []string{"pom.xml", "src/main/java/eventfold/CeProduce.java"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		sum.Write(b)
	}
	stamp, stampFile := hex.EncodeToString(sum.Sum(nil)), filepath.Join(out, "sources.sha256")
	cpFile := filepath.Join(out, "classpath.txt")
	if b, err := os.ReadFile(stampFile); err != nil || string(b) != stamp {
		for _, tool := range []string{"mvn", "java"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("the Java SDK producer needs %s on PATH (Debian packages maven and default-jdk): %v", tool, err)
			}
		}
		cmd := exec.Command("mvn", "-q", "-B", "-Dmaven.repo.local="+filepath.Join(root, ".build", "m2"), "-Dcesdk.build="+out,
			"compile", "dependency:build-classpath", "-Dmdep.outputFile="+cpFile)
		cmd.Dir = src
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("failed to build the Java SDK producer: %v\n%s", err, b)
		}
		if err := os.WriteFile(stampFile, []byte(stamp), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := os.ReadFile(cpFile)
	if err != nil {
		t.Fatalf("failed to read the Java SDK producer's classpath: %v", err)
	}
	return filepath.Join(out, "classes") + string(os.PathListSeparator) + strings.TrimSpace(string(cp))
}
