package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/yardmq/yard/internal/txn"
)

// TestApiVersionsTransactionVersion: ApiVersions v3+ lists transaction.version as supported
// (0-2) and finalized at the coordinator's level; level 0 is not listed as finalized.
func TestApiVersionsTransactionVersion(t *testing.T) {
	for _, level := range []int16{2, 1, 0} {
		t.Run(fmt.Sprint(level), func(t *testing.T) {
			ts, _ := startTxnServer(t, func(c *txn.Config) { c.TransactionVersion = level })
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = 3
			req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
			resp := ts.raw(t).roundTrip(req).(*kmsg.ApiVersionsResponse)
			if len(resp.SupportedFeatures) != 1 || resp.SupportedFeatures[0].Name != "transaction.version" ||
				resp.SupportedFeatures[0].MinVersion != 0 || resp.SupportedFeatures[0].MaxVersion != 2 {
				t.Fatalf("supported features %+v", resp.SupportedFeatures)
			}
			var finalized []string
			for _, f := range resp.FinalizedFeatures {
				finalized = append(finalized, fmt.Sprintf("%s=%d-%d", f.Name, f.MinVersionLevel, f.MaxVersionLevel))
			}
			want := fmt.Sprintf("[transaction.version=%d-%d]", level, level)
			if level == 0 {
				want = "[]"
			}
			if fmt.Sprint(finalized) != want || (level > 0) != (resp.FinalizedFeaturesEpoch >= 0) {
				t.Fatalf("finalized %v epoch %d, want %s", finalized, resp.FinalizedFeaturesEpoch, want)
			}
		})
	}
}

// TestTransactionVersion2Raw: under transaction version 2 a Produce v12 begins the
// transaction and adds its partition (no AddPartitionsToTxn), EndTxn v5 returns the bumped
// epoch (again on a retry), the markers end the transaction, and the old epoch is fenced;
// Produce v11 still needs AddPartitionsToTxn.
func TestTransactionVersion2Raw(t *testing.T) {
	ts, tc := startTxnServer(t, nil)
	createTopic(t, ts, "t", 1)
	pid, e0, err := tc.InitProducerID("raw2", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	produce := func(version int16, epoch int16, seq int32, v string) int16 {
		b := makeBatch(pid, epoch, seq, v)
		setTransactional(b)
		return rc.roundTrip(produceReq(version, "t", 0, b)).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	}
	if code := produce(11, e0, 0, "v11"); code != kerr.InvalidTxnState.Code {
		t.Fatalf("Produce v11 without AddPartitionsToTxn: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if code := produce(12, e0, 0, "open"); code != 0 {
		t.Fatalf("Produce v12 without AddPartitionsToTxn: %v", kerr.ErrorForCode(code))
	}
	part := partOf(t, ts, "t", 0)
	if lso, hw := part.LastStableOffset(), part.HighWatermark(); lso != 0 || hw != 1 {
		t.Fatalf("LSO %d HW %d with the transaction open, want 0 1", lso, hw)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.Version, end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = 5, "raw2", pid, e0, true
	for i := range 2 { // the second is a retry
		r := rc.roundTrip(end).(*kmsg.EndTxnResponse)
		if r.ErrorCode != 0 || r.ProducerID != pid || r.ProducerEpoch != e0+1 {
			t.Fatalf("EndTxn v5 (%d): %v, producer %d epoch %d; want %d %d", i, kerr.ErrorForCode(r.ErrorCode), r.ProducerID, r.ProducerEpoch, pid, e0+1)
		}
	}
	if lso, hw := part.LastStableOffset(), part.HighWatermark(); lso != 2 || hw != 2 {
		t.Fatalf("after the commit LSO %d HW %d, want 2 2", lso, hw)
	}
	if code := produce(12, e0, 1, "zombie"); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("Produce v12 at the old epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := produce(12, e0+1, 0, "next"); code != 0 {
		t.Fatalf("Produce v12 at the new epoch: %v", kerr.ErrorForCode(code))
	}
	if got := consumeAll(t, ts, "t", false); fmt.Sprint(got) != "[open next]" {
		t.Fatalf("log holds %v, want [open next]", got)
	}
}

// TestTransactionVersionClients: franz-go's transactional producer with transaction version 2
// (its default against a broker that finalizes it) and capped to version 1's request versions
// (as a pre-4.0 client): committed data is read by a read_committed consumer, aborted data
// never; under version 2 every transaction end bumps the epoch, under version 1 none does.
func TestTransactionVersionClients(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []kgo.Opt
		wantEpoch int16
	}{
		{"v2", nil, 3},
		{"v1", []kgo.Opt{kgo.MaxVersions(kversion.V3_9_0())}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, coord := startTxnServer(t, nil)
			createTopic(t, ts, "t", 2)
			p := txnProducer(t, ts, "tv-"+tc.name, tc.opts...)
			produceTxn(t, p, true, "c1", "c2")
			produceTxn(t, p, false, "a1", "a2")
			produceTxn(t, p, true, "c3")
			if got := uniq(consumeAll(t, ts, "t", true)); fmt.Sprint(got) != "[c1 c2 c3]" {
				t.Errorf("read_committed saw %v, want [c1 c2 c3]", got)
			}
			d, err := coord.Describe("tv-" + tc.name)
			if err != nil || d.Epoch != tc.wantEpoch || d.State != txn.CompleteCommit {
				t.Fatalf("after three transactions: %+v %v, want epoch %d", d, err, tc.wantEpoch)
			}
		})
	}
}
