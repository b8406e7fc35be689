// Package loader produces events from JSON lines to the events topic,
// keyed by customer id: the loader behind `eventfold produce`.
package loader

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/processor"
)

// MaxLineBytes bounds one input line; longer lines are an error.
const MaxLineBytes = 1 << 20

// Load reads one CloudEvent per line from r and produces it to topic with
// the event's subject as key, in the given content mode of the CloudEvents
// Kafka binding: the line as the value (structured), or the data as the
// value and the attributes as ce_ headers (binary). Every line is checked against the event
// contract first: a line that is not a valid event stops the load with an
// error naming the line, after the events before it were produced. Blank
// lines are skipped. It returns the number of events acknowledged.
//
// seal, when not nil, seals each event's personal data before it is
// produced (keys.Keyring.Seal).
func Load(ctx context.Context, r io.Reader, producer sarama.AsyncProducer, topic string, mode processor.ContentMode, seal Sealer) (int, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    int
		firstErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range producer.Successes() {
			mu.Lock()
			acked++
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for perr := range producer.Errors() {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("failed to produce event for %v: %w", perr.Msg.Key, perr.Err)
			}
			mu.Unlock()
		}
	}()
	readErr := send(ctx, r, producer, topic, mode, seal)
	producer.AsyncClose() // flushes, then closes Successes and Errors
	wg.Wait()
	return acked, errors.Join(readErr, firstErr)
}

// Sealer seals the personal data of a structured-mode event.
type Sealer func(ctx context.Context, customer string, value []byte) ([]byte, error)

func send(ctx context.Context, r io.Reader, producer sarama.AsyncProducer, topic string, mode processor.ContentMode, seal Sealer) error {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 64<<10), MaxLineBytes)
	for line := 1; scanner.Scan(); line++ {
		raw := scanner.Bytes()
		if len(trimSpace(raw)) == 0 {
			continue
		}
		ev, err := processor.DecodeValue(raw)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if seal != nil {
			if raw, err = seal(ctx, ev.Key, raw); err != nil {
				return fmt.Errorf("line %d: failed to seal personal data: %w", line, err)
			}
		}
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(ev.Key), Value: sarama.ByteEncoder(bytes.Clone(raw))}
		if mode == processor.ContentModeBinary {
			data, headers, err := processor.EncodeBinary(raw)
			if err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
			// A nil value is the binding's event without data.
			msg.Value, msg.Headers = nil, headers.ToSarama()
			if data != nil {
				msg.Value = sarama.ByteEncoder(bytes.Clone(data))
			}
		}
		select {
		case producer.Input() <- msg:
		case <-ctx.Done():
			return fmt.Errorf("stopped at line %d: %w", line, ctx.Err())
		}
	}
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("failed to read events: %w", err)
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
