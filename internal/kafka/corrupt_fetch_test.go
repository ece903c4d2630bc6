package kafka

import (
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchOfDamagedBatchIsCorruptMessage: a batch whose length field went bad on disk after
// a clean shutdown is answered with CORRUPT_MESSAGE, as Kafka answers a corrupt record on
// fetch, rather than with misframed bytes that a consumer skips as a partial batch and asks
// for again forever; the batch before it is still served.
func TestFetchOfDamagedBatchIsCorruptMessage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServerDir(t, dir)
	if _, err := ts.admin(t).CreateTopic(testCtx(t), 1, 1, nil, "dmg"); err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	var sizes []int
	for _, v := range []string{"zero", "one", "two"} {
		b := makeBatch(-1, -1, -1, v)
		sizes = append(sizes, len(b))
		p := rc.roundTrip(produceReq(9, "dmg", 0, b)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("produce: error %d", p.ErrorCode)
		}
	}
	ts.stop(t)
	var seg string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "00000000000000000000.log") && strings.Contains(p, "dmg") {
			seg = p
		}
		return nil
	})
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatalf("segment %q: %v", seg, err)
	}
	at := sizes[0] + 8 // batch 1's length field
	binary.BigEndian.PutUint32(data[at:], binary.BigEndian.Uint32(data[at:])-3)
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}

	ts = startServerDir(t, dir)
	rc = ts.raw(t)
	fetch := func(offset int64) kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.SessionEpoch = 12, 1<<20, -1
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes = offset, 1<<20
		req.Topics = []kmsg.FetchRequestTopic{{Topic: "dmg", Partitions: []kmsg.FetchRequestTopicPartition{fp}}}
		return rc.roundTrip(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}
	if p := fetch(0); p.ErrorCode != 0 || len(p.RecordBatches) < sizes[0] {
		t.Fatalf("fetch at 0: error %d, %d bytes; want batch 0", p.ErrorCode, len(p.RecordBatches))
	}
	for range 2 {
		if p := fetch(1); p.ErrorCode != kerr.CorruptMessage.Code {
			t.Fatalf("fetch at the damaged batch: error %d with %d bytes, want %d (CORRUPT_MESSAGE)",
				p.ErrorCode, len(p.RecordBatches), kerr.CorruptMessage.Code)
		}
	}
}
