package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/test/harness"
)

// TestServeGroupSessionBoundsFlag checks that a group flag of `yard serve` reaches the
// coordinator: a join asking for less than --kafka-group-min-session-timeout is refused with
// Kafka's INVALID_SESSION_TIMEOUT, one within the bounds is not.
func TestServeGroupSessionBoundsFlag(t *testing.T) {
	t.Parallel()
	y := harness.Start(t, harness.WithArgs("--kafka-group-min-session-timeout", "20s"))
	cl, ctx := kafkaClient(t, y)
	join := func(session time.Duration) int16 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = "bounds"
		req.SessionTimeoutMillis = int32(session.Milliseconds())
		req.RebalanceTimeoutMillis = 1000
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := join(10 * time.Second); code != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("join with 10s under a 20s minimum: error %d, want INVALID_SESSION_TIMEOUT", code)
	}
	if code := join(25 * time.Second); code == kerr.InvalidSessionTimeout.Code {
		t.Fatal("join with 25s refused under a 20s minimum")
	}
}

// TestServeNodeIDFlag checks that --node-id (default 1, as Kafka's quick start) is the broker
// id clients are told everywhere: Metadata, DescribeCluster and FindCoordinator.
func TestServeNodeIDFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want int32
	}{{nil, 1}, {[]string{"--node-id", "7"}, 7}} {
		y := harness.Start(t, harness.WithArgs(tc.args...))
		cl, ctx := kafkaClient(t, y)
		meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(meta.Brokers) != 1 || meta.Brokers[0].NodeID != tc.want || meta.ControllerID != tc.want {
			t.Errorf("%v: Metadata brokers %+v controller %d, want node %d", tc.args, meta.Brokers, meta.ControllerID, tc.want)
		}
		dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(dc.Brokers) != 1 || dc.Brokers[0].NodeID != tc.want || dc.ControllerID != tc.want {
			t.Errorf("%v: DescribeCluster brokers %+v controller %d, want node %d", tc.args, dc.Brokers, dc.ControllerID, tc.want)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
		fcr, err := fc.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		node := fcr.NodeID
		if len(fcr.Coordinators) == 1 {
			node = fcr.Coordinators[0].NodeID
		}
		if node != tc.want {
			t.Errorf("%v: FindCoordinator node %d, want %d", tc.args, node, tc.want)
		}
	}
}

// TestServeTransactionMaxTimeoutFlag: --kafka-transaction-max-timeout bounds the timeout a
// transactional producer may ask for (INVALID_TRANSACTION_TIMEOUT beyond it).
func TestServeTransactionMaxTimeoutFlag(t *testing.T) {
	t.Parallel()
	y := harness.Start(t, harness.WithArgs("--kafka-transaction-max-timeout", "1m"))
	cl, ctx := kafkaClient(t, y)
	init := func(timeout time.Duration) int16 {
		req := kmsg.NewPtrInitProducerIDRequest()
		id := "flag"
		req.TransactionalID, req.TransactionTimeoutMillis = &id, int32(timeout.Milliseconds())
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := init(2 * time.Minute); code != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("2m under a 1m maximum: error %d, want INVALID_TRANSACTION_TIMEOUT", code)
	}
	if code := init(time.Minute); code != 0 {
		t.Fatalf("1m under a 1m maximum: error %d", code)
	}
}

// kafkaClient is a client of y's Kafka listener and a 30-second context for its requests,
// both ended when the test ends.
func kafkaClient(t *testing.T, y *harness.Yard) (*kgo.Client, context.Context) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return cl, ctx
}
