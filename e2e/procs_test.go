package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// processStopGrace is how long the cleanup gives a process between
// SIGTERM and SIGKILL: a clean stop of serve commits offsets and closes
// its databases, which takes a few seconds on a busy machine.
const processStopGrace = 15 * time.Second

// process is a child process of a test, watched from its start so that a
// wait for it can end as soon as it exits.
type process struct {
	t       *testing.T
	name    string // in messages: "eventfold serve", "instance-1", "prometheus"
	cmd     *exec.Cmd
	output  processOutput
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	stopMu  sync.Mutex    // the cleanup's stop may meet one of the test's own
}

// processSpec says how to start a process and what to log of it when the
// test failed.
type processSpec struct {
	name    string
	cmd     *exec.Cmd // not started; its stdout and stderr go to output
	output  processOutput
	about   string // logged with the output: where its address and data are
	logTail int    // bytes at the end of the output logged when the test failed
}

// startProcess starts spec.cmd and watches it until it exits. The cleanup
// stops it (SIGTERM, SIGKILL after processStopGrace) and, if the test
// failed, logs the end of its output. Create the temporary directories the
// process uses before calling, so that they are removed after it stopped.
func startProcess(t *testing.T, spec processSpec) *process {
	t.Helper()
	p := &process{t: t, name: spec.name, cmd: spec.cmd, output: spec.output, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = spec.output.writer(), spec.output.writer()
	if err := p.cmd.Start(); err != nil {
		spec.output.close()
		t.Fatalf("failed to start %s: %v", spec.name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		spec.output.close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(processStopGrace)
		if t.Failed() {
			t.Logf("%s (pid %d, %s) log:\n%s", p.name, p.pid(), spec.about, p.output.tail(spec.logTail))
		}
	})
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitErr is why the process ended; call it once it has.
func (p *process) exitErr() error {
	if p.waitErr == nil {
		return errors.New("exit status 0")
	}
	return p.waitErr
}

// exitsWithin reports whether the process has exited within timeout.
func (p *process) exitsWithin(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then kills. It returns the
// exit code, or -1 if the process had to be killed.
func (p *process) stop(grace time.Duration) int {
	p.t.Helper()
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if !p.exited() {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.t.Errorf("failed to send SIGTERM to %s: %v", p.name, err)
		}
		if !p.exitsWithin(grace) {
			p.t.Errorf("%s did not stop within %s of SIGTERM; killing it", p.name, grace)
			p.kill()
			return -1
		}
	}
	return p.cmd.ProcessState.ExitCode()
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("failed to kill %s: %v", p.name, err)
	}
	<-p.done
}

// awaitStatus polls url until it answers status and returns how long that
// took, or an error once timeout passed or the process exited: a process
// that is gone will not answer, and waiting on would only hide why.
func (p *process) awaitStatus(url string, status int, timeout time.Duration) (time.Duration, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	last := "no answer"
	for {
		if p.exited() {
			return time.Since(start), fmt.Errorf("%s exited before %s answered %d: %w", p.name, url, status, p.exitErr())
		}
		code, body := httpGet(hc, url)
		if code == status {
			return time.Since(start), nil
		}
		last = body
		if code != 0 {
			last = fmt.Sprintf("%d %s", code, body)
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%s not %d within %s; last answer: %s", url, status, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpGet returns the status code and body of a GET of url, or 0 and the
// transport error. The body is read whole, so that the connection is
// reused, and cut to a size fit for a message.
func httpGet(hc *http.Client, url string) (int, string) {
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Sprintf("failed to read the answer of %s: %v", url, err)
	}
	return resp.StatusCode, tailOf(strings.TrimSpace(string(body)), 1<<10)
}

// processOutput is where a process writes its output, read back for checks
// and for the log of a failed test.
type processOutput interface {
	writer() io.Writer
	close() // once the process has exited
	String() string
	tail(n int) string
}

// outputBuffer keeps a process's output in memory, safe to read while it
// runs.
type outputBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *outputBuffer) writer() io.Writer { return b }
func (b *outputBuffer) close()            {}
func (b *outputBuffer) tail(n int) string { return tailOf(b.String(), n) }

// outputFile keeps a process's output in a file: a debug log is too large
// to hold in memory for a whole test. The process writes to the file
// itself, with no copy through this process.
type outputFile struct {
	path string
	f    *os.File
}

// newOutputFile creates the file at path.
func newOutputFile(t *testing.T, path string) *outputFile {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("failed to create the log %s: %v", path, err)
	}
	return &outputFile{path: path, f: f}
}

func (o *outputFile) writer() io.Writer { return o.f }
func (o *outputFile) close()            { o.f.Close() }

func (o *outputFile) String() string    { return fileTail(o.path, -1) }
func (o *outputFile) tail(n int) string { return fileTail(o.path, n) }

// fileTail returns at most the last n bytes of the file at path, all of it
// if n < 0, or why it cannot be read: it is for a failed test's log, which
// is no place to fail again.
func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(failed to read %s: %v)", path, err)
	}
	if n < 0 {
		return string(b)
	}
	return tailOf(string(b), n)
}

// tailOf returns at most the last n bytes of s, marked as cut if they are
// not all of it.
func tailOf(s string, n int) string {
	if len(s) > n {
		return "[...]\n" + s[len(s)-n:]
	}
	return s
}
