package bench

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// kstreamsSources is the Kafka Streams baseline, a Maven module, embedded
// so that the binary can build it wherever it runs.
//
//go:embed kstreams/pom.xml kstreams/src
var kstreamsSources embed.FS

// KStreamsAvailable reports why the Kafka Streams baseline cannot run
// here, or nil: it needs java and mvn on PATH.
func KStreamsAvailable() error {
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not on PATH", tool)
		}
	}
	return nil
}

// buildKStreams builds the embedded Maven module into buildDir/kstreams,
// with Maven's local repository in buildDir/m2, and returns the classpath
// to run it. A build of the same sources is reused without starting
// Maven; Maven runs offline first, and online only for what the local
// repository lacks.
func buildKStreams(ctx context.Context, buildDir string) (string, error) {
	out, err := filepath.Abs(filepath.Join(buildDir, "kstreams"))
	if err != nil {
		return "", fmt.Errorf("failed to resolve the kstreams build dir: %w", err)
	}
	m2 := filepath.Join(filepath.Dir(out), "m2")
	sum := sha256.New()
	var files []string
	if err := fs.WalkDir(kstreamsSources, "kstreams", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path) // WalkDir walks in lexical order
		}
		return err
	}); err != nil {
		return "", fmt.Errorf("failed to list the kstreams sources: %w", err)
	}
	for _, f := range files {
		b, err := kstreamsSources.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("failed to read %s: %w", f, err)
		}
		sum.Write([]byte(f + "\x00"))
		sum.Write(b)
	}
	stamp, stampFile := hex.EncodeToString(sum.Sum(nil)), filepath.Join(out, "sources.sha256")
	cpFile := filepath.Join(out, "classpath.txt")
	if b, err := os.ReadFile(stampFile); err != nil || string(b) != stamp {
		if err := os.RemoveAll(out); err != nil {
			return "", fmt.Errorf("failed to clear the old kstreams build: %w", err)
		}
		src := filepath.Join(out, "module")
		for _, f := range files {
			b, _ := kstreamsSources.ReadFile(f) // read above
			dst := filepath.Join(src, strings.TrimPrefix(f, "kstreams/"))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return "", fmt.Errorf("failed to write the kstreams sources: %w", err)
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				return "", fmt.Errorf("failed to write the kstreams sources: %w", err)
			}
		}
		mvn := func(extra ...string) ([]byte, error) {
			args := append(extra, "-q", "-B", "-Dmaven.repo.local="+m2, "-Dkstreams.build="+filepath.Join(out, "target"),
				"compile", "dependency:build-classpath", "-Dmdep.outputFile="+cpFile)
			cmd := exec.CommandContext(ctx, "mvn", args...)
			cmd.Dir = src
			return cmd.CombinedOutput()
		}
		if _, err := mvn("-o"); err != nil {
			if b, err := mvn(); err != nil {
				return "", fmt.Errorf("failed to build the Kafka Streams baseline with Maven: %w\n%s", err, b)
			}
		}
		if err := os.WriteFile(stampFile, []byte(stamp), 0o644); err != nil {
			return "", fmt.Errorf("failed to stamp the kstreams build: %w", err)
		}
	}
	cp, err := os.ReadFile(cpFile)
	if err != nil {
		return "", fmt.Errorf("failed to read the kstreams classpath: %w", err)
	}
	return filepath.Join(out, "target", "classes") + string(os.PathListSeparator) + strings.TrimSpace(string(cp)), nil
}

// kstreamsApp runs the Kafka Streams baseline as child processes, one
// instance at a time.
type kstreamsApp struct {
	classpath string
	brokers   string
	topic     string
	threads   int
	heapMiB   int
	dir       string // state dirs go under it
}

// ksInstance is one running Kafka Streams process.
type ksInstance struct {
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:port
	appID   string
	exited  chan error
	stderr  *lockedBuffer
	started time.Time
	client  *http.Client
}

// start runs an instance of application appID on stateDir.
func (a *kstreamsApp) start(appID, stateDir string) (*ksInstance, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	cmd := exec.Command("java", "-Xmx"+strconv.Itoa(a.heapMiB)+"m", "-cp", a.classpath, "eventfold.kstreams.CustomerFold",
		a.brokers, a.topic, appID, stateDir, port, strconv.Itoa(a.threads))
	in := &ksInstance{cmd: cmd, base: "http://" + addr, appID: appID, exited: make(chan error, 1), stderr: &lockedBuffer{},
		client: &http.Client{Timeout: 5 * time.Second}}
	cmd.Stderr = in.stderr
	in.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start the Kafka Streams baseline: %w", err)
	}
	go func() { in.exited <- cmd.Wait() }()
	return in, nil
}

// ksProgress is what /progress answers.
type ksProgress struct {
	Records   int64  `json:"records"`
	ElapsedNs int64  `json:"elapsed_ns"`
	State     string `json:"state"`
}

func (in *ksInstance) progress(ctx context.Context) (ksProgress, error) {
	var p ksProgress
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.base+"/progress", nil)
	if err != nil {
		return p, err
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return p, fmt.Errorf("failed to read the Kafka Streams progress: %w", err)
	}
	return p, nil
}

// await polls /progress every recoverPoll until done says so, failing
// when the process exits, Kafka Streams fails (its uncaught-exception
// handler shuts the client down to ERROR) or ctx ends.
func (in *ksInstance) await(ctx context.Context, what string, done func(ksProgress) bool) (ksProgress, error) {
	t := time.NewTicker(recoverPoll)
	defer t.Stop()
	for {
		p, err := in.progress(ctx)
		if err == nil && done(p) {
			return p, nil
		}
		if p.State == "ERROR" || p.State == "PENDING_ERROR" {
			return p, fmt.Errorf("the Kafka Streams baseline failed before %s: state %s: %s", what, p.State, in.stderr.String())
		}
		select {
		case err := <-in.exited:
			in.exited <- err
			return p, fmt.Errorf("the Kafka Streams baseline exited before %s: %v: %s", what, err, in.stderr.String())
		case <-ctx.Done():
			return p, fmt.Errorf("the Kafka Streams baseline did not reach %s: %w: %s", what, ctx.Err(), in.stderr.String())
		case <-t.C:
		}
	}
}

// awaitReady waits for the state RUNNING: every task restored.
func (in *ksInstance) awaitReady(ctx context.Context) error {
	_, err := in.await(ctx, "RUNNING", func(p ksProgress) bool { return p.State == "RUNNING" })
	return err
}

// awaitRecords waits until the instance has aggregated n records.
func (in *ksInstance) awaitRecords(ctx context.Context, n int64) (ksProgress, error) {
	return in.await(ctx, fmt.Sprintf("%d records", n), func(p ksProgress) bool { return p.Records >= n })
}

// peakRSS is the process's VmHWM so far.
func (in *ksInstance) peakRSS() int64 {
	return procStatus(fmt.Sprintf("/proc/%d/status", in.cmd.Process.Pid), "VmHWM:")
}

// stop closes the instance cleanly (SIGTERM: KafkaStreams.close writes
// its checkpoints) and waits for it.
func (in *ksInstance) stop() error {
	_ = in.cmd.Process.Signal(syscall.SIGTERM) // it may have exited already
	select {
	case err := <-in.exited:
		in.exited <- err
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 143) {
			return fmt.Errorf("the Kafka Streams baseline failed: %w: %s", err, in.stderr.String())
		}
		return nil
	case <-time.After(90 * time.Second):
		_ = in.cmd.Process.Kill()
		<-in.exited
		return errors.New("the Kafka Streams baseline did not stop within 90s of SIGTERM")
	}
}

// kill ends an instance whose run failed.
func (in *ksInstance) kill() {
	_ = in.cmd.Process.Kill()
	err := <-in.exited
	in.exited <- err
}

// changelog is the topic Kafka Streams creates for the store of appID.
func changelog(appID string) string { return appID + "-customers-changelog" }
