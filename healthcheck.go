package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// healthcheck probes a running server's /healthz: the container image's
// HEALTHCHECK, which has no curl or wget to run.
func healthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		url     string
		timeout time.Duration
	)
	fs := newFlagSet("healthcheck", "eventfold healthcheck: exit 0 when the server answers 200 on its health endpoint.")
	fs.SetOutput(stderr)
	fs.stringVar(&url, "url", defaultHealthURL(), "URL to probe (default: /healthz on the port of EVENTFOLD_HTTP_ADDR, else 8080)")
	fs.durationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("failed to probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// defaultHealthURL probes the port serve listens on when the container
// sets EVENTFOLD_HTTP_ADDR, so that the image's HEALTHCHECK follows it.
func defaultHealthURL() string {
	port := "8080"
	if addr := os.Getenv("EVENTFOLD_HTTP_ADDR"); addr != "" {
		if _, p, err := net.SplitHostPort(addr); err == nil && p != "" {
			port = p
		}
	}
	return "http://127.0.0.1:" + port + "/healthz"
}
