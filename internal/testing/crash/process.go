package crash

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is a program that can be SIGKILLed and started again with the
// same arguments, as an orchestrator restarts a pod on the same volume.
// The output of every run is appended to one log file. Its methods are
// for one goroutine.
type Process struct {
	Name    string
	Path    string
	Args    []string
	Env     []string
	LogPath string

	cmd     *exec.Cmd
	done    chan struct{} // closed when the current run exited
	waitErr error         // set before done is closed
	starts  int
}

// Start starts a run, marking it in the log.
func (p *Process) Start() error {
	out, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("failed to open the log of %s: %w", p.Name, err)
	}
	p.starts++
	fmt.Fprintf(out, "===== start %d of %s at %s =====\n", p.starts, p.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = p.Env
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("failed to start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		out.Close()
		p.waitErr = err
		close(done)
	}()
	return nil
}

// Starts is the number of runs started.
func (p *Process) Starts() int { return p.starts }

// Exited reports whether the current run has ended.
func (p *Process) Exited() bool {
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the current run ended; read it once Exited.
func (p *Process) Err() error { return p.waitErr }

// Kill SIGKILLs the current run and waits until it is gone.
func (p *Process) Kill() error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to kill %s: %w", p.Name, err)
	}
	<-p.done
	return nil
}

// Stop sends SIGTERM and waits up to grace, then kills. It reports a run
// that had to be killed.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to send SIGTERM to %s: %w", p.Name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		err := p.Kill()
		return errors.Join(fmt.Errorf("%s did not stop within %s of SIGTERM; killed it", p.Name, grace), err)
	}
}

// LogTail returns at most the last n bytes of the log.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(failed to read the log: %v)", err)
	}
	if len(b) > n {
		return "[...]\n" + string(b[len(b)-n:])
	}
	return string(b)
}
