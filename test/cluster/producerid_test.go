package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterProducerIDsUnique asks every node of a cluster for an idempotent producer id:
// they must differ. Allocated per node, two producers that asked different nodes shared an
// id, and a replicated partition took the second one's batches for retries of the first's
// (same id, epoch and sequence numbers): acknowledged with the first's offsets, never stored.
func TestClusterProducerIDsUnique(t *testing.T) {
	t.Parallel()
	c := Start(t, 3, Options{})
	seen := map[int64]int{}
	for id, y := range c.Nodes {
		cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		deadline := time.Now().Add(livenessBound)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionTimeoutMillis = 60000
			resp, err := req.RequestWith(ctx, cl)
			cancel()
			if err == nil && resp.ErrorCode == 0 {
				if prev, dup := seen[resp.ProducerID]; dup {
					t.Fatalf("nodes %d and %d both handed out producer id %d", prev, id+1, resp.ProducerID)
				}
				seen[resp.ProducerID] = id + 1
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: no producer id: %v %+v", id+1, err, resp)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
