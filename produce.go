package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	"github.com/eventfold/eventfold/internal/loader"
	"github.com/eventfold/eventfold/internal/service"
	"github.com/eventfold/eventfold/processor"
)

func produce(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		brokers, topic, file, kafkaVersion, contentMode string
		kekFile, erasure, dataDir                       string
		security                                        kafkaSecurityFlags
	)
	fs := newFlagSet("produce", "eventfold produce: read one CloudEvent per line (stdin or --file) and produce it keyed by its subject, the customer id.")
	fs.SetOutput(stderr)
	fs.stringVar(&brokers, "brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers (default: the embedded broker of a local serve)")
	fs.stringVar(&topic, "events-topic", "customer-events", "topic to produce to")
	fs.stringVar(&file, "file", "", "file of JSON lines to read instead of stdin")
	fs.stringVar(&contentMode, "content-mode", string(processor.ContentModeStructured),
		"CloudEvents Kafka content mode: structured (the line is the value) or binary (data is the value, attributes are ce_ headers)")
	fs.stringVar(&kafkaVersion, "kafka-version", kafka.DefaultVersion, "Kafka protocol version spoken by sarama (at least 2.1.0)")
	fs.stringVar(&kekFile, "kek-file", "", "file of key-encryption keys, as serve's; empty reads <data-dir>/kek, the one a local serve generated")
	fs.stringVar(&dataDir, "data-dir", "./data", "data directory of a local serve, for its generated KEK")
	fs.stringVar(&erasure, "erasure", "on", "on: seal personal data with the customer's data key before producing; off: produce it in plaintext")
	security.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	mode, err := processor.ParseContentMode(contentMode)
	if err != nil {
		return fmt.Errorf("%w: --content-mode: %w", errUsage, err)
	}
	in := stdin
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("failed to open events file: %w", err)
		}
		defer f.Close()
		in = f
	}
	kc := kafka.DefaultConfig()
	kc.Brokers, kc.Version, kc.ClientID = splitList(brokers), kafkaVersion, "eventfold-produce"
	if err := security.apply(&kc); err != nil {
		return err
	}
	if err := kc.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err := security.check(ctx, kc); err != nil {
		return err
	}
	producer, err := kafka.NewAsyncProducer(kc, processor.NewMurmur2Hasher)
	if err != nil {
		return err
	}
	var seal loader.Sealer
	switch erasure {
	case "off":
	case "on":
		if kekFile == "" {
			kekFile = filepath.Join(dataDir, "kek")
		}
		keks, err := keys.LoadKEKs(kekFile)
		if err != nil {
			producer.Close()
			return fmt.Errorf("%w: %w (give --kek-file, or --erasure=off to produce personal data in plaintext)", errUsage, err)
		}
		kr, err := service.StartKeyring(ctx, kc, kafka.Topics{Events: topic}, keks, slog.New(slog.NewTextHandler(stderr, nil)))
		if err != nil {
			producer.Close()
			return err
		}
		defer kr.Close()
		seal = kr.Seal
	default:
		producer.Close()
		return fmt.Errorf("%w: --erasure %q must be on or off", errUsage, erasure)
	}
	n, err := loader.Load(ctx, in, producer, topic, mode, seal)
	fmt.Fprintf(stdout, "produced %d events to %s\n", n, topic)
	return err
}
