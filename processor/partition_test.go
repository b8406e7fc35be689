package processor

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMurmur2KafkaVectors checks the hash against the values Kafka's own
// UtilsTest.testMurmur2 asserts for the Java client (the same vectors
// franz-go's partitioner_test.go pins).
func TestMurmur2KafkaVectors(t *testing.T) {
	tests := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, test := range tests {
		t.Run(test.in, func(t *testing.T) {
			if got := int32(murmur2([]byte(test.in))); got != test.want {
				t.Errorf("murmur2(%q) = %d, want %d", test.in, got, test.want)
			}
			// Kafka's toPositive masks the sign bit; it never negates.
			wantHash := uint32(test.want) & 0x7fffffff
			for _, n := range []int32{1, 2, 3, 7, 100, 1 << 20} {
				if got, want := PartitionFor(test.in, n), int32(wantHash%uint32(n)); got != want {
					t.Errorf("PartitionFor(%q, %d) = %d, want %d", test.in, n, got, want)
				}
			}
		})
	}
}

// partitionKeys returns a few thousand keys: empty, every tail length of
// murmur2's 4-byte blocks, Kafka's test strings, customer-like ids, random
// bytes (mostly invalid UTF-8), random unicode and long keys.
func partitionKeys(t *testing.T) [][]byte {
	t.Helper()
	rng := rand.New(rand.NewSource(186)) // goka issue 186
	keys := [][]byte{{}}
	for n := 1; n <= 16; n++ {
		keys = append(keys, []byte("abcdefghijklmnop"[:n]))
	}
	for _, s := range []string{"21", "foobar", "a-little-bit-long-string", "a-little-bit-longer-string",
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", "abc", "\x00", "\xff\xff\xff\xff", "ключ", "キー", "🔑🔑"} {
		keys = append(keys, []byte(s))
	}
	for i := range 500 {
		keys = append(keys, fmt.Appendf(nil, "cust-%d", i))
	}
	for i := range 1500 {
		n := rng.Intn(48)
		if i%50 == 0 {
			n = rng.Intn(600)
		}
		b := make([]byte, n)
		rng.Read(b)
		keys = append(keys, b)
	}
	runes := []rune("aZ09-_.:éßøπЖж中文字キー🙂🔑\u0301\u200d")
	unicode := 0
	for range 700 {
		var sb strings.Builder
		for range 1 + rng.Intn(24) {
			sb.WriteRune(runes[rng.Intn(len(runes))])
		}
		if !isASCII(sb.String()) {
			unicode++
		}
		keys = append(keys, []byte(sb.String()))
	}
	for _, n := range []int{1 << 10, 4<<10 + 3, 64 << 10} {
		b := make([]byte, n)
		rng.Read(b)
		keys = append(keys, b)
	}
	if unicode < 500 {
		t.Fatalf("only %d non-ASCII unicode keys", unicode)
	}
	return keys
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestPartitionForMatchesKgo compares PartitionFor with franz-go's default
// key partitioner, which is Kafka's Java partitioner: murmur2, sign bit
// masked, modulo the partition count.
func TestPartitionForMatchesKgo(t *testing.T) {
	keys := partitionKeys(t)
	for _, n := range []int32{1, 3, 6, 7, 12, 100} {
		t.Run(fmt.Sprintf("%d partitions", n), func(t *testing.T) {
			p := kgo.StickyKeyPartitioner(nil).ForTopic("customer-events")
			seen := make(map[int]bool)
			for _, k := range keys {
				// A non-nil key, even an empty one, is hashed; a nil key
				// would make kgo pick a sticky partition instead.
				want := p.Partition(&kgo.Record{Key: k}, int(n))
				seen[want] = true
				if got := PartitionFor(string(k), n); int(got) != want {
					t.Errorf("PartitionFor(%q, %d) = %d, kgo chooses %d", k, n, got, want)
				}
			}
			if len(seen) != int(n) {
				t.Errorf("the keys reach only %d of %d partitions", len(seen), n)
			}
		})
	}
}

// TestSaramaPartitionerWithMurmur2Hasher checks that sarama's hash
// partitioner with our hasher, which goka's producer uses for emits and
// table writes, puts every key where PartitionFor does, including keys
// whose raw murmur2 has the sign bit set (sarama negates those).
func TestSaramaPartitionerWithMurmur2Hasher(t *testing.T) {
	keys := partitionKeys(t)
	negative := 0
	for _, k := range keys {
		if int32(murmur2(k)) < 0 {
			negative++
		}
	}
	if negative < len(keys)/4 {
		t.Fatalf("only %d of %d keys have a negative murmur2; the test would not tell masking from negation", negative, len(keys))
	}
	for _, n := range []int32{1, 3, 6, 7, 12, 100} {
		t.Run(fmt.Sprintf("%d partitions", n), func(t *testing.T) {
			p := sarama.NewCustomHashPartitioner(NewMurmur2Hasher)("customer-events")
			if !p.RequiresConsistency() {
				t.Error("sarama's hash partitioner does not require consistency")
			}
			for _, k := range keys {
				got, err := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(k)}, n)
				if err != nil {
					t.Fatalf("Partition(%q): %v", k, err)
				}
				if want := PartitionFor(string(k), n); got != want {
					t.Errorf("sarama puts %q on partition %d of %d, PartitionFor on %d", k, got, n, want)
				}
			}
		})
	}
}

// TestGokaHashWithMurmur2Hasher mirrors how goka's processor and view pick
// the partition of a key from the hasher (goka processor.go and view.go:
// int32(Sum32()), negated when negative, modulo the partition count).
func TestGokaHashWithMurmur2Hasher(t *testing.T) {
	for _, k := range partitionKeys(t) {
		h := NewMurmur2Hasher()
		if _, err := h.Write(k); err != nil {
			t.Fatalf("Write: %v", err)
		}
		hash := int32(h.Sum32())
		if hash < 0 {
			t.Fatalf("Sum32 of %q has the sign bit set: %#x", k, h.Sum32())
		}
		for _, n := range []int32{1, 3, 7, 12, 100} {
			if got, want := hash%n, PartitionFor(string(k), n); got != want {
				t.Errorf("goka would put %q on partition %d of %d, PartitionFor on %d", k, got, n, want)
			}
		}
	}
}

func TestMurmur2Hasher(t *testing.T) {
	key := []byte("a-little-bit-longer-string")
	javaHash := int32(-1486304829) // Kafka's UtilsTest value for key
	want := uint32(javaHash) & 0x7fffffff

	tests := []struct {
		name   string
		writes [][]byte
		reset  bool // write garbage and reset before the writes
	}{
		{"one write", [][]byte{key}, false},
		{"byte by byte", func() [][]byte {
			var w [][]byte
			for _, b := range key {
				w = append(w, []byte{b})
			}
			return w
		}(), false},
		{"uneven chunks", [][]byte{key[:3], nil, key[3:10], key[10:]}, false},
		{"after reset", [][]byte{key}, true},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			h := NewMurmur2Hasher()
			if test.reset {
				if _, err := h.Write([]byte("garbage that must be forgotten")); err != nil {
					t.Fatalf("Write: %v", err)
				}
				h.Reset()
			}
			for _, w := range test.writes {
				if n, err := h.Write(w); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(w))
				}
			}
			if got := h.Sum32(); got != want {
				t.Errorf("Sum32 = %#x, want %#x", got, want)
			}
			prefix := []byte("prefix")
			sum := h.Sum(prefix)
			wantSum := append([]byte("prefix"), byte(want>>24), byte(want>>16), byte(want>>8), byte(want))
			if string(sum) != string(wantSum) {
				t.Errorf("Sum(prefix) = %x, want %x", sum, wantSum)
			}
			if h.Sum32() != want {
				t.Error("Sum changed the hash state")
			}
			if h.Size() != 4 || h.BlockSize() != 4 {
				t.Errorf("Size, BlockSize = %d, %d; want 4, 4", h.Size(), h.BlockSize())
			}
		})
	}
}

func TestPartitionForWithoutPartitions(t *testing.T) {
	for _, n := range []int32{0, -1, -100} {
		if got := PartitionFor("cust-1", n); got != 0 {
			t.Errorf("PartitionFor(cust-1, %d) = %d, want 0", n, got)
		}
	}
}

// The processor writes the table with franz-go's producer
// (kafka.GokaProducer), whose partitioner must put each state on its
// customer's partition, the one PartitionFor gives and the events topic
// holds the customer's events on.
func TestTableProducerPartitionsAsPartitionFor(t *testing.T) {
	partitioner := kgo.StickyKeyPartitioner(nil).ForTopic("customers-table")
	for _, partitions := range []int32{1, 3, 6, 7, 12, 64} {
		for i := range 5000 {
			key := fmt.Sprintf("cust-%07d", i)
			if i%7 == 0 {
				key = fmt.Sprintf("Ünïcode-%d-%x", i, i*7919)
			}
			got := partitioner.Partition(&kgo.Record{Key: []byte(key)}, int(partitions))
			if want := PartitionFor(key, partitions); int32(got) != want {
				t.Fatalf("%q of %d partitions: the producer writes partition %d, PartitionFor gives %d", key, partitions, got, want)
			}
		}
	}
}
