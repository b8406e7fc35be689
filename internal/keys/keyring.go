package keys

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventfold/eventfold/internal/kafka"
	"github.com/eventfold/eventfold/processor"
)

// Config configures a Keyring.
type Config struct {
	Kafka kafka.Config
	// Topic is the keys topic (kafka.Topics.Keys).
	Topic string
	KEKs  *KEKs
	// CatchUpTimeout bounds the wait, on a key the keyring does not hold,
	// for the keys topic to be read up to its end; 0 means 10 s.
	CatchUpTimeout time.Duration
	// StartTimeout bounds the first read of the whole keys topic; 0 means
	// 2 minutes.
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// dataKey is one customer's data key, unwrapped.
type dataKey struct {
	id  string
	raw []byte
}

// wrapped is the value of a data key's record in the keys topic.
type wrapped struct {
	KEK string `json:"kek"`
	Key string `json:"key"` // base64 of nonce, ciphertext and tag
}

// Keyring holds the data keys of the keys topic in memory, about 100
// bytes per key, and follows the topic: a key a writer of another
// process created arrives here, a tombstone removes one.
type Keyring struct {
	cfg       Config
	log       *slog.Logger
	client    sarama.Client
	consumer  sarama.Consumer
	publisher *kafka.Publisher
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu       sync.Mutex
	keys     map[string][]dataKey // by customer
	erased   map[string]bool      // customers whose erasure marker was read
	next     map[int32]int64      // next offset to read, by partition
	progress chan struct{}        // closed and replaced when next moves
	firstBad error                // the first record that did not unwrap
	bad      int

	// creating serializes the creation of a customer's first key, by a
	// stripe of customers: writers of one customer must agree on one key,
	// while writers of different customers (a bulk load, many new
	// registrations) publish theirs concurrently instead of one Kafka
	// round trip after another.
	creating [createStripes]sync.Mutex

	ciphers *aeadCache
}

// createStripes is the number of locks key creation is spread over.
const createStripes = 256

// creationLock returns the lock of customer's stripe.
func (k *Keyring) creationLock(customer string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(customer)) // a hash never fails to write
	return &k.creating[h.Sum32()%createStripes]
}

// New connects a keyring; Start reads the keys topic.
func New(cfg Config) (*Keyring, error) {
	if cfg.KEKs == nil || cfg.Topic == "" {
		return nil, errors.New("failed to create keyring: no KEK or no keys topic")
	}
	if cfg.CatchUpTimeout <= 0 {
		cfg.CatchUpTimeout = 10 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sc := cfg.Kafka.Sarama()
	sc.ClientID = cfg.Kafka.ClientID + "-keys"
	client, err := sarama.NewClient(cfg.Kafka.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("failed to connect keyring: %w", err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("failed to create keyring consumer: %w", err)
	}
	publisher, err := kafka.NewPublisher(cfg.Kafka, cfg.Topic, processor.NewMurmur2Hasher)
	if err != nil {
		consumer.Close()
		client.Close()
		return nil, fmt.Errorf("failed to create key publisher: %w", err)
	}
	return &Keyring{cfg: cfg, log: cfg.Logger.With("component", "keyring"), client: client, consumer: consumer,
		publisher: publisher, keys: map[string][]dataKey{}, erased: map[string]bool{}, next: map[int32]int64{},
		progress: make(chan struct{}), ciphers: newAEADCache()}, nil
}

// Start reads the keys topic to its end and goes on following it until
// Close. It fails, naming the record, when a key of the topic is wrapped
// by a KEK the KEK file does not hold or does not unwrap with it: a wrong
// KEK file would otherwise show every customer's data as unreadable.
func (k *Keyring) Start(ctx context.Context) error {
	partitions, err := k.client.Partitions(k.cfg.Topic)
	if err != nil {
		return fmt.Errorf("failed to list partitions of %s: %w", k.cfg.Topic, err)
	}
	startCtx, stop := context.WithTimeout(ctx, k.cfg.StartTimeout)
	defer stop()
	runCtx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	for _, p := range partitions {
		oldest, pc, err := k.consumeFromOldest(startCtx, p)
		if err != nil {
			return err
		}
		k.mu.Lock()
		k.next[p] = oldest
		k.mu.Unlock()
		k.wg.Add(1)
		go k.follow(runCtx, pc)
	}
	if err := k.CatchUp(startCtx); err != nil {
		return fmt.Errorf("failed to read the keys topic %s: %w", k.cfg.Topic, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.firstBad != nil {
		return fmt.Errorf("%d data keys of %s cannot be unwrapped with the KEK file (KEKs %s): %w",
			k.bad, k.cfg.Topic, strings.Join(k.cfg.KEKs.IDs(), ", "), k.firstBad)
	}
	return nil
}

// consumeFromOldest starts consuming a partition of the keys topic at its
// first offset. Right after the topic was created, a broker may not lead
// its partition yet (NotLeaderForPartition): that is retried, with fresh
// metadata, for up to StartTimeout.
func (k *Keyring) consumeFromOldest(ctx context.Context, p int32) (int64, sarama.PartitionConsumer, error) {
	deadline := time.Now().Add(k.cfg.StartTimeout)
	for {
		oldest, err := k.client.GetOffset(k.cfg.Topic, p, sarama.OffsetOldest)
		if err == nil {
			pc, cerr := k.consumer.ConsumePartition(k.cfg.Topic, p, oldest)
			if cerr == nil {
				return oldest, pc, nil
			}
			err = fmt.Errorf("failed to consume %s/%d: %w", k.cfg.Topic, p, cerr)
		} else {
			err = fmt.Errorf("failed to read offsets of %s/%d: %w", k.cfg.Topic, p, err)
		}
		if !errors.Is(err, sarama.ErrNotLeaderForPartition) && !errors.Is(err, sarama.ErrLeaderNotAvailable) ||
			time.Now().After(deadline) {
			return 0, nil, err
		}
		_ = k.client.RefreshMetadata(k.cfg.Topic) // the next attempt reports the real error
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close stops following the topic and releases the clients.
func (k *Keyring) Close() error {
	if k.cancel != nil {
		k.cancel()
	}
	err := k.consumer.Close()
	k.wg.Wait()
	return errors.Join(err, k.publisher.Close(), k.client.Close())
}

func (k *Keyring) follow(ctx context.Context, pc sarama.PartitionConsumer) {
	defer k.wg.Done()
	defer pc.AsyncClose()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-pc.Messages():
			if !ok {
				return
			}
			k.apply(msg)
		}
	}
}

// apply takes one record of the keys topic into the keyring.
func (k *Keyring) apply(msg *sarama.ConsumerMessage) {
	k.mu.Lock()
	defer k.mu.Unlock()
	defer func() {
		k.next[msg.Partition] = msg.Offset + 1
		close(k.progress)
		k.progress = make(chan struct{})
	}()
	customer, keyID, isKey := strings.Cut(string(msg.Key), "/")
	switch {
	case !isKey && msg.Value != nil:
		k.erased[customer] = true
		k.dropAll(customer)
	case !isKey:
	case msg.Value == nil:
		k.remove(customer, keyID)
	default:
		raw, err := k.unwrap(customer, keyID, msg.Value)
		if err != nil {
			k.bad++
			if k.firstBad == nil {
				k.firstBad = fmt.Errorf("key %s at %s/%d@%d: %w", msg.Key, msg.Topic, msg.Partition, msg.Offset, err)
			}
			k.log.Warn("a data key cannot be unwrapped", "key", string(msg.Key), "error", err)
			return
		}
		k.add(customer, dataKey{id: keyID, raw: raw})
	}
}

func (k *Keyring) add(customer string, dk dataKey) {
	for _, have := range k.keys[customer] {
		if have.id == dk.id {
			return
		}
	}
	k.keys[customer] = append(k.keys[customer], dk)
}

// dropAll forgets every key of customer, their ciphers included.
func (k *Keyring) dropAll(customer string) {
	for _, dk := range k.keys[customer] {
		k.ciphers.forget(dk.raw)
	}
	delete(k.keys, customer)
}

func (k *Keyring) remove(customer, keyID string) {
	have := k.keys[customer]
	for i, dk := range have {
		if dk.id == keyID {
			k.ciphers.forget(dk.raw)
			have = append(have[:i:i], have[i+1:]...)
			break
		}
	}
	if len(have) == 0 {
		delete(k.keys, customer)
		return
	}
	k.keys[customer] = have
}

func wrapAAD(customer, keyID string) []byte {
	return []byte("eventfold/dek/v1\x00" + processor.KeyRecordKey(customer, keyID))
}

func (k *Keyring) unwrap(customer, keyID string, value []byte) ([]byte, error) {
	var w wrapped
	if err := json.Unmarshal(value, &w); err != nil {
		return nil, fmt.Errorf("not a wrapped key: %w", err)
	}
	kek, ok := k.cfg.KEKs.byID(w.KEK)
	if !ok {
		return nil, fmt.Errorf("wrapped by KEK %q, which the KEK file does not hold", w.KEK)
	}
	sealed, err := base64.StdEncoding.DecodeString(w.Key)
	if err != nil {
		return nil, fmt.Errorf("not a wrapped key: %w", err)
	}
	raw, err := open(kek.aead, sealed, wrapAAD(customer, keyID))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("KEK %q of the KEK file does not unwrap it: the KEK file holds other key material under that id", w.KEK)
	}
	return raw, nil
}

// CatchUp waits until the keyring has read every record the keys topic
// held when it was called.
func (k *Keyring) CatchUp(ctx context.Context) error {
	ends := map[int32]int64{}
	k.mu.Lock()
	partitions := make([]int32, 0, len(k.next))
	for p := range k.next {
		partitions = append(partitions, p)
	}
	k.mu.Unlock()
	for _, p := range partitions {
		end, err := kafka.GetOffset(ctx, k.client, k.cfg.Topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("failed to read the end of %s/%d: %w", k.cfg.Topic, p, err)
		}
		ends[p] = end
	}
	for {
		k.mu.Lock()
		behind := false
		for p, end := range ends {
			if k.next[p] < end {
				behind = true
			}
		}
		progress := k.progress
		k.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("keys topic not read to its end: %w", ctx.Err())
		case <-progress:
		}
	}
}

// lookup finds a customer's key; erased says the customer was erased.
func (k *Keyring) lookup(customer, keyID string) (raw []byte, found, erased bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, dk := range k.keys[customer] {
		if dk.id == keyID {
			return dk.raw, true, k.erased[customer]
		}
	}
	return nil, false, k.erased[customer]
}

// Erased reports whether the keyring read the customer's erasure.
func (k *Keyring) Erased(customer string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.erased[customer]
}

// KeyIDs implements processor.Keyring.
func (k *Keyring) KeyIDs(customer string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ids []string
	for _, dk := range k.keys[customer] {
		ids = append(ids, dk.id)
	}
	return ids
}

// Erase implements processor.Keyring.
func (k *Keyring) Erase(customer string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// The key bytes are dropped, not zeroed: a writer may be sealing
	// with them at this moment, and a zeroed key would seal under a key
	// anyone knows.
	k.dropAll(customer)
	k.erased[customer] = true
}

// Verify implements processor.Keyring.
func (k *Keyring) Verify(ctx context.Context, customer, field, sealed string) error {
	keyID, blob, err := processor.ParseSealed(sealed)
	if err != nil {
		return fmt.Errorf("%w: %v", processor.ErrBadSeal, err)
	}
	raw, found, erased := k.lookup(customer, keyID)
	if !found && !erased {
		// A writer publishes a key before the event it seals, so the
		// key is in the topic by now if it exists: read up to the end,
		// boundedly, and look again.
		cctx, cancel := context.WithTimeout(ctx, k.cfg.CatchUpTimeout)
		err := k.CatchUp(cctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: looking for key %s: %v", processor.ErrKeysUnavailable, keyID, err)
		}
		raw, found, erased = k.lookup(customer, keyID)
	}
	switch {
	case found:
		if _, err := k.openWith(raw, blob, processor.SealAAD(customer, field)); err != nil {
			return fmt.Errorf("%w: key %s: %v", processor.ErrBadSeal, keyID, err)
		}
		return nil
	case erased:
		return nil
	}
	return fmt.Errorf("%w: key %s is not in the keys topic and the customer was not erased", processor.ErrKeyMissing, keyID)
}

func (k *Keyring) openWith(raw, blob, aad []byte) ([]byte, error) {
	aead, err := k.ciphers.get(raw)
	if err != nil {
		return nil, err
	}
	return open(aead, blob, aad)
}

// keyFor returns a key of the customer for a writer, creating and
// publishing one if it has none. Creation is serialized per customer in
// the process; writers of two processes may both create one, and both
// keys are kept.
func (k *Keyring) keyFor(ctx context.Context, customer string) (dataKey, error) {
	lock := k.creationLock(customer)
	lock.Lock()
	defer lock.Unlock()
	k.mu.Lock()
	have, erased := k.keys[customer], k.erased[customer]
	k.mu.Unlock()
	switch {
	case erased:
		return dataKey{}, processor.ErrCustomerErased
	case len(have) > 0:
		return have[0], nil
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails since Go 1.24
	dk := dataKey{id: NewKeyID(), raw: raw}
	kek := k.cfg.KEKs.Primary()
	value, err := json.Marshal(wrapped{KEK: kek.ID,
		Key: base64.StdEncoding.EncodeToString(seal(kek.aead, raw, wrapAAD(customer, dk.id)))})
	if err != nil {
		return dataKey{}, fmt.Errorf("failed to encode data key: %w", err)
	}
	if _, _, err := k.publisher.Publish(ctx, processor.KeyRecordKey(customer, dk.id), value); err != nil {
		return dataKey{}, fmt.Errorf("failed to publish data key: %w", err)
	}
	k.mu.Lock()
	k.add(customer, dk)
	k.mu.Unlock()
	return dk, nil
}
