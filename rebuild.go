package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/eventfold/eventfold/internal/rebuild"
	"github.com/eventfold/eventfold/internal/service"
	"github.com/eventfold/eventfold/processor"
)

type rebuildFlags struct {
	common   commonFlags
	interval time.Duration
	timeout  time.Duration
}

func parseRebuildFlags(args []string, stderr io.Writer) (rebuildFlags, error) {
	var f rebuildFlags
	fs := newFlagSet("rebuild", "eventfold rebuild: fold the whole events topic from the beginning into the table of a new --group,\n"+
		"report progress, and stop once caught up. Then run `eventfold serve --group <new group>`.")
	fs.SetOutput(stderr)
	f.common.register(fs)
	fs.durationVar(&f.interval, "progress-interval", 2*time.Second, "how often to report progress")
	fs.durationVar(&f.timeout, "timeout", 0, "give up (exit 1) if not caught up within this long; 0 waits as long as it takes")
	if err := fs.parse(args); err != nil {
		return f, err
	}
	if err := f.common.validate(); err != nil {
		return f, err
	}
	switch {
	case f.interval <= 0:
		return f, fmt.Errorf("%w: --progress-interval %s must be positive", errUsage, f.interval)
	case f.timeout < 0:
		return f, fmt.Errorf("%w: --timeout %s must not be negative", errUsage, f.timeout)
	}
	return f, nil
}

// runRebuild runs `eventfold rebuild`: see package internal/rebuild.
func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseRebuildFlags(args, stderr)
	if err != nil {
		return err
	}
	log, kc, stopBroker, err := f.common.start(ctx, stderr)
	if err != nil {
		return err
	}
	defer stopBroker()
	keks, err := f.common.keks(log)
	if err != nil {
		return err
	}
	cfg := rebuild.Config{Kafka: kc, Topics: f.common.topics(), DataDir: f.common.dataDir,
		Interval: f.interval, Timeout: f.timeout, Logger: log}
	if keks != nil {
		cfg.Keyring = func(ctx context.Context) (processor.Keyring, func() error, error) {
			kr, err := service.StartKeyring(ctx, kc, f.common.topics(), keks, log)
			if err != nil {
				return nil, nil, err
			}
			return kr, kr.Close, nil
		}
	}
	err = rebuild.Run(ctx, cfg, stdout)
	if errors.Is(err, rebuild.ErrRefused) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return err
}
