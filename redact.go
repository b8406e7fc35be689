package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/eventfold/eventfold/internal/redact"
)

// runRedact runs `eventfold redact`: see package internal/redact.
func runRedact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var common commonFlags
	var to string
	fs := newFlagSet("redact", "eventfold redact: copy the events topic into a new one, record by record at the same offsets,\n"+
		"with the personal fields of the customers that --group's table says are erased made unreadable, plaintext included.\n"+
		"Stop serve first; then rebuild a new group from --to and serve it (README: Personal data and erasure).")
	fs.SetOutput(stderr)
	common.register(fs)
	fs.stringVar(&to, "to", "", "the new events topic (missing or empty); its .dlq and .keys topics are created beside it")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := common.validate(); err != nil {
		return err
	}
	log, kc, stopBroker, err := common.start(ctx, stderr)
	if err != nil {
		return err
	}
	defer stopBroker()
	rep, err := redact.Run(ctx, redact.Config{Kafka: kc, From: common.topics(), To: to, Logger: log})
	if errors.Is(err, redact.ErrRefused) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(rep)
}
