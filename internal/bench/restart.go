package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ServeRestart is `eventfold serve` started as a child process on the
// folded group, as after a deploy: its processor recovers the table into
// memory and its view into leveldb. Its RSS is the service's alone, with
// no broker and no bench beside it.
type ServeRestart struct {
	// ReadySeconds is from the start of the process to /readyz 200.
	ReadySeconds float64 `json:"ready_seconds"`
	// PeakRSSBytes is the child's VmHWM when it became ready; RSSBytes
	// its VmRSS then.
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	RSSBytes     int64 `json:"rss_bytes"`
	Customers    int   `json:"customers"`
}

// lockedBuffer collects a child's stderr for the error message.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil // keep the start, where failures show
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// restartServe runs binary serve on the run's topics and group, waits
// for /readyz, reads its memory and stops it. The in-process service must
// be stopped first, or the two processors would share the partitions.
func restartServe(ctx context.Context, binary string, cl *cluster, svc *service, customers int) (*ServeRestart, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(cl.tmp, "serve")
	cmd := exec.Command(binary, "serve",
		"--brokers", strings.Join(cl.kc.Brokers, ","), "--kafka-version", cl.kc.Version,
		"--events-topic", svc.topics.Events, "--group", svc.topics.Group, "--partitions", strconv.Itoa(int(svc.partitions)),
		"--data-dir", dataDir, "--http-addr", addr, "--log-level", "warn",
		// As the in-process service it restarts: personal data in plaintext.
		"--erasure=off")
	// The flags say everything; EVENTFOLD_* variables of the bench's
	// environment must not change what the child serves.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EVENTFOLD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s serve: %w", binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM) // it may have exited already
		select {
		case err := <-exited:
			return err
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("serve did not stop within 60s of SIGTERM")
		}
	}
	client := &http.Client{Timeout: time.Second}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if ready(ctx, client, "http://"+addr+"/readyz") {
			break
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("serve exited before it was ready: %v: %s", err, stderr.String())
		case <-ctx.Done():
			_ = stop()
			return nil, fmt.Errorf("serve was not ready: %w: %s", ctx.Err(), stderr.String())
		case <-t.C:
		}
	}
	r := &ServeRestart{ReadySeconds: time.Since(start).Seconds(), Customers: customers}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	r.PeakRSSBytes, r.RSSBytes = procStatus(status, "VmHWM:"), procStatus(status, "VmRSS:")
	if err := stop(); err != nil {
		return nil, fmt.Errorf("failed to stop serve: %w: %s", err, stderr.String())
	}
	return r, nil
}

func ready(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
