package murmur2

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka's Java client is the reference; franz-go's StickyKeyPartitioner documents that it
// matches it for keyed records, and the Kafka interop suite checks that against the Java client.
func TestPartitionMatchesKafkaPartitioner(t *testing.T) {
	t.Parallel()
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int32{1, 2, 3, 6, 7, 100} {
		for i := range 500 {
			key := []byte(fmt.Sprintf("PKG-%d-%s", i*7919, strings.Repeat("x", i%10)))
			if got, want := Partition(key, n), int32(p.Partition(&kgo.Record{Key: key}, int(n))); got != want {
				t.Fatalf("key %q over %d partitions: got %d, want %d", key, n, got, want)
			}
		}
	}
}

// Known values of Kafka's Utils.murmur2, as its own unit tests list them.
func TestHashKnownValues(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		if got := int32(Hash([]byte(c.in))); got != c.want {
			t.Errorf("Hash(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}
