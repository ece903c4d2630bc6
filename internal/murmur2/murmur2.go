// Package murmur2 is the key hash of Kafka's default partitioner: the 32-bit MurmurHash2
// variant (seed 0x9747b28c) that the Java client applies to a record key, made positive by
// clearing the sign bit, modulo the partition count. The AMQP stream publisher uses it so that
// a key lands in the partition a Kafka producer would have picked (the CLI's producer gets the
// same placement from franz-go's StickyKeyPartitioner, which matches it; the test checks that).
package murmur2

import "encoding/binary"

const (
	seed = 0x9747b28c
	mul  = 0x5bd1e995
	r    = 24
)

// Hash is Kafka's murmur2 of b.
func Hash(b []byte) uint32 {
	h := uint32(seed) ^ uint32(len(b))
	for len(b) >= 4 {
		k := binary.LittleEndian.Uint32(b)
		k *= mul
		k ^= k >> r
		k *= mul
		h *= mul
		h ^= k
		b = b[4:]
	}
	// The tail bytes fold in from the highest one down, as the reference implementation's
	// fall-through switch does.
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= mul
	}
	h ^= h >> 13
	h *= mul
	h ^= h >> 15
	return h
}

// Partition is the partition Kafka's default partitioner picks for a non-empty key among n
// partitions. n must be positive.
func Partition(key []byte, n int32) int32 {
	if n <= 0 {
		panic("BUG: murmur2.Partition with no partitions")
	}
	return int32((Hash(key) & 0x7fffffff) % uint32(n))
}
