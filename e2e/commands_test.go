package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// command is a program a test runs to completion: the binary's produce,
// rebuild or a serve expected to give up, or a third-party producer.
type command struct {
	path    string
	args    []string
	env     []string      // added to binEnv()
	stdin   []byte        // none (/dev/null) if nil
	dir     string        // the working directory; the test process's if empty
	timeout time.Duration // a minute if zero
}

// commandResult is how a command ended.
type commandResult struct {
	code           int
	output         string // stdout and stderr as they interleaved
	stdout, stderr string
	took           time.Duration
}

// run runs c and returns how it ended, whatever its exit code. A command
// still running after its timeout, or one that cannot be started, fails
// the test.
func (c command) run(t testing.TB) commandResult {
	t.Helper()
	timeout := c.timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, c.args...)
	cmd.Env = append(binEnv(), c.env...)
	cmd.Dir = c.dir
	if c.stdin != nil {
		cmd.Stdin = bytes.NewReader(c.stdin)
	}
	var stdout, stderr bytes.Buffer
	output := &outputBuffer{} // written by both copies at once
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, output), io.MultiWriter(&stderr, output)
	start := time.Now()
	err := cmd.Run()
	r := commandResult{output: output.String(), stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("%s did not exit within %s; output:\n%s", c, timeout, output.tail(16<<10))
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("failed to run %s: %v", c, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	return r
}

// succeed runs c and fails the test unless it exits with 0.
func (c command) succeed(t testing.TB) commandResult {
	t.Helper()
	r := c.run(t)
	if r.code != 0 {
		t.Fatalf("%s failed after %s: exit status %d\n%s", c, r.took.Round(time.Millisecond), r.code, r.output)
	}
	return r
}

// String is the command line, for messages.
func (c command) String() string {
	return strings.Join(append([]string{filepath.Base(c.path)}, c.args...), " ")
}
