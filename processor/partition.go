package processor

import "hash"

// Kafka's default partitioner (the Java client's, also franz-go's) is
// toPositive(murmur2(key)) % partitions, where toPositive masks the sign
// bit. goka's processor negates negative hashes instead of masking them and
// its default hasher is FNV-1a, so neither matches Java producers (goka
// issue 186). Murmur2Hasher returns the already masked murmur2 value: goka's
// negation and sarama's hash partitioner then never change it, and every
// component partitions keys exactly like Kafka's Java client.

// PartitionFor returns the partition Kafka's default partitioner assigns
// to key on a topic with the given number of partitions.
func PartitionFor(key string, partitions int32) int32 {
	if partitions <= 0 {
		return 0
	}
	return int32(murmur2([]byte(key))&0x7fffffff) % partitions
}

// NewMurmur2Hasher returns a hash.Hash32 whose Sum32 is Kafka's positive
// murmur2 of the bytes written. Pass it to goka's WithHasher options.
func NewMurmur2Hasher() hash.Hash32 { return &murmur2Hasher{} }

type murmur2Hasher struct{ buf []byte }

func (h *murmur2Hasher) Write(p []byte) (int, error) {
	h.buf = append(h.buf, p...)
	return len(p), nil
}

func (h *murmur2Hasher) Sum(b []byte) []byte {
	s := h.Sum32()
	return append(b, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}

func (h *murmur2Hasher) Sum32() uint32 { return murmur2(h.buf) & 0x7fffffff }
func (h *murmur2Hasher) Reset()        { h.buf = h.buf[:0] }
func (h *murmur2Hasher) Size() int     { return 4 }
func (h *murmur2Hasher) BlockSize() int {
	return 4
}

// murmur2 is Kafka's Utils.murmur2 (seed 0x9747b28c), byte for byte.
func murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	length := len(data)
	h := uint32(seed) ^ uint32(length)
	n := length / 4
	for i := 0; i < n; i++ {
		j := i * 4
		k := uint32(data[j]) | uint32(data[j+1])<<8 | uint32(data[j+2])<<16 | uint32(data[j+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
