package redact

import (
	"context"
	"fmt"
	"strings"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/internal/keys"
	"github.com/eventfold/eventfold/processor"
)

// batchRecords bounds the records sent at once: at most MaxEventBytes each
// (a record of an erased customer grows by sealing, still under 4 MiB).
const batchRecords = 256

// blankedValue replaces an erased customer's record that is not an event:
// it stays malformed, so a rebuild dead-letters it as the live fold did,
// without the original bytes.
var blankedValue = []byte(`{"eventfold":"redacted: a record of an erased customer that is not an event"}`)

// each calls fn for every record of a topic's partition, from its first
// offset up to its end when each is called.
func each(ctx context.Context, client sarama.Client, topic string, p int32, fn func(*sarama.ConsumerMessage) error) error {
	end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("failed to read offsets of %s/%d: %w", topic, p, err)
	}
	start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
	if err != nil || start >= end {
		return err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("failed to create consumer: %w", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, p, start)
	if err != nil {
		return fmt.Errorf("failed to consume %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-pc.Errors():
			return fmt.Errorf("failed to read %s/%d: %w", topic, p, err)
		case msg := <-pc.Messages():
			if err := fn(msg); err != nil {
				return err
			}
			if msg.Offset+1 >= end {
				return nil
			}
		}
	}
}

// erasedCustomers reads the group table and returns the erased customers,
// each with the id of a key its sealed values used ("" for none). An
// erased state is final, so the first erased record of a key decides.
func erasedCustomers(ctx context.Context, client sarama.Client, table string) (map[string]string, error) {
	partitions, err := client.Partitions(table)
	if err != nil {
		return nil, fmt.Errorf("failed to list partitions of %s: %w", table, err)
	}
	erased := map[string]string{}
	for _, p := range partitions {
		err := each(ctx, client, table, p, func(msg *sarama.ConsumerMessage) error {
			if msg.Value == nil || erased[string(msg.Key)] != "" {
				return nil
			}
			c, err := processor.DecodeCustomer(msg.Value)
			if err != nil {
				return fmt.Errorf("failed to decode %s of %s/%d at %d: %w", msg.Key, table, p, msg.Offset, err)
			}
			if c.Status == processor.StatusErased {
				erased[string(msg.Key)] = ""
				if len(c.DataKeys) > 0 {
					erased[string(msg.Key)] = c.DataKeys[0]
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return erased, nil
}

// copyKeys writes the live records of the old keys topic to the new one,
// and an erasure marker for every erased customer: a rebuild from the new
// topic then opens the keys of the others and passes the erased ones'
// sealed values unread. A key tombstoned in the old topic, or of an erased
// customer, is not copied at all. The old topic is held in memory, about 150 bytes a key.
func copyKeys(ctx context.Context, kc kafka.Config, client sarama.Client, from, to string, erased map[string]string) (int, error) {
	partitions, err := client.Partitions(from)
	if err != nil {
		return 0, fmt.Errorf("failed to list partitions of %s: %w", from, err)
	}
	live := map[string][]byte{}
	for _, p := range partitions {
		err := each(ctx, client, from, p, func(msg *sarama.ConsumerMessage) error {
			if msg.Value == nil {
				delete(live, string(msg.Key))
			} else {
				live[string(msg.Key)] = msg.Value
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	for key := range live {
		// An erased customer's key that escaped its tombstone (a writer
		// that raced the erasure) must not reach the new topic.
		if customer, _, ok := strings.Cut(key, "/"); ok {
			if _, gone := erased[customer]; gone {
				delete(live, key)
			}
		}
	}
	for customer := range erased {
		live[customer] = processor.ErasedMarker
	}
	pub, err := kafka.NewPublisher(kc, to, processor.NewMurmur2Hasher)
	if err != nil {
		return 0, fmt.Errorf("failed to create key publisher: %w", err)
	}
	defer pub.Close()
	for key, value := range live {
		if _, _, err := pub.Publish(ctx, key, value); err != nil {
			return 0, fmt.Errorf("failed to copy key %s to %s: %w", key, to, err)
		}
	}
	return len(live), nil
}

// copyPartition copies one partition, record by record, redacting the
// erased customers' plaintext, and checks that each record lands at its
// old offset.
func copyPartition(ctx context.Context, client sarama.Client, producer sarama.SyncProducer, from, to string, p int32,
	erased map[string]string, rep *Report) error {
	if start, err := client.GetOffset(from, p, sarama.OffsetOldest); err != nil {
		return fmt.Errorf("failed to read offsets of %s/%d: %w", from, p, err)
	} else if start != 0 {
		return fmt.Errorf("%w: %s/%d starts at offset %d, so the new topic's offsets could not equal the old ones", ErrRefused, from, p, start)
	}
	var batch []*sarama.ProducerMessage
	var offsets []int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := producer.SendMessages(batch); err != nil {
			return fmt.Errorf("failed to write %s/%d: %w", to, p, err)
		}
		for i, m := range batch {
			if m.Offset != offsets[i] {
				return fmt.Errorf("%w: the record of %s/%d at offset %d landed at %d in %s: the old topic has a gap (transaction markers?) or another producer writes to the new one",
					ErrRefused, from, p, offsets[i], m.Offset, to)
			}
		}
		rep.Records += int64(len(batch))
		batch, offsets = batch[:0], offsets[:0]
		return nil
	}
	err := each(ctx, client, from, p, func(msg *sarama.ConsumerMessage) error {
		out, err := rewrite(msg, erased, rep)
		if err != nil {
			return fmt.Errorf("failed to redact %s/%d at %d: %w", from, p, msg.Offset, err)
		}
		out.Topic, out.Partition, out.Timestamp = to, p, msg.Timestamp
		batch, offsets = append(batch, out), append(offsets, msg.Offset)
		if len(batch) == batchRecords {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// rewrite returns the record to write for msg: msg as it is, unless it is
// an erased customer's and holds plaintext personal data or is not an
// event.
func rewrite(msg *sarama.ConsumerMessage, erased map[string]string, rep *Report) (*sarama.ProducerMessage, error) {
	customer := string(msg.Key)
	out := &sarama.ProducerMessage{Key: sarama.ByteEncoder(msg.Key)}
	if msg.Value != nil {
		out.Value = sarama.ByteEncoder(msg.Value)
	}
	for _, h := range msg.Headers {
		out.Headers = append(out.Headers, *h)
	}
	keyID, isErased := erased[customer]
	if !isErased {
		return out, nil
	}
	headers := make(map[string][]byte, len(msg.Headers))
	for _, h := range msg.Headers {
		headers[string(h.Key)] = h.Value
	}
	ev, err := processor.DecodeRecord(customer, msg.Value, headers)
	if err != nil {
		rep.Blanked++
		out.Value, out.Headers = sarama.ByteEncoder(blankedValue), nil
		return out, nil
	}
	if !processor.HasPlaintext(ev) {
		return out, nil
	}
	// The event is rendered anew from what the fold reads, in structured
	// mode: unknown attributes and unknown data fields, which could hold
	// personal data too, are left behind.
	value, err := processor.Encode(ev)
	if err != nil {
		return nil, err
	}
	if keyID == "" {
		keyID = keys.NewKeyID()
		erased[customer] = keyID // one key id per customer, within MaxDataKeys
	}
	if value, err = keys.SealDiscarded(customer, keyID, value); err != nil {
		return nil, err
	}
	rep.Redacted++
	out.Value = sarama.ByteEncoder(value)
	out.Headers = []sarama.RecordHeader{{Key: []byte("content-type"), Value: []byte("application/cloudevents+json")}}
	return out, nil
}
