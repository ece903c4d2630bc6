package kafka

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

// memRange is an in-memory log.File for building ReadResults in tests.
type memFile struct{ *bytes.Reader }

func (memFile) Write([]byte) (int, error)          { panic("unused") }
func (memFile) WriteAt([]byte, int64) (int, error) { panic("unused") }
func (memFile) Sync() error                        { return nil }
func (memFile) Truncate(int64) error               { return nil }
func (memFile) Close() error                       { return nil }
func (m memFile) Size() (int64, error)             { return m.Reader.Size(), nil }
func (memFile) Name() string                       { return "mem" }

// TestFetchEncodingMatchesKmsg: for every served version, the split encoding with the record
// bytes put back in is exactly what kmsg encodes for the same response.
func TestFetchEncodingMatchesKmsg(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for v := int16(4); v <= 18; v++ {
		for trial := 0; trial < 20; trial++ {
			plan := &fetchPlan{version: v, errCode: int16(rng.IntN(2)), sessionID: 0}
			want := kmsg.NewPtrFetchResponse()
			want.Version = v
			want.ErrorCode = plan.errCode
			for ti := 0; ti < rng.IntN(4); ti++ {
				ft := fetchTopic{name: string(rune('a' + ti)), id: [16]byte{byte(ti), 1}}
				kt := kmsg.NewFetchResponseTopic()
				kt.Topic, kt.TopicID = ft.name, ft.id
				for pi := 0; pi < rng.IntN(4); pi++ {
					data := make([]byte, rng.IntN(3)*rng.IntN(300))
					for i := range data {
						data[i] = byte(rng.IntN(256))
					}
					fp := fetchPart{partition: int32(pi), errCode: int16(rng.IntN(3)), hwm: rng.Int64N(1e9), lso: rng.Int64N(1e9), logStart: rng.Int64N(1e6)}
					if len(data) > 0 {
						// Split the data over two ranges of one file, as a read across segments.
						f := memFile{bytes.NewReader(append(make([]byte, 7), data...))}
						cut := int64(len(data) / 2)
						fp.rr = &log.ReadResult{Ranges: []log.Range{{File: f, Pos: 7, Len: cut}, {File: f, Pos: 7 + cut, Len: int64(len(data)) - cut}}, Bytes: int64(len(data))}
					}
					ft.parts = append(ft.parts, fp)
					kp := kmsg.NewFetchResponseTopicPartition()
					kp.Partition, kp.ErrorCode, kp.HighWatermark, kp.LastStableOffset, kp.LogStartOffset = fp.partition, fp.errCode, fp.hwm, fp.lso, fp.logStart
					kp.RecordBatches = data
					if rng.IntN(2) == 0 { // read_committed: an aborted-transaction list, maybe empty
						fp.committed, fp.aborted = true, []stream.AbortedTxn{}
						kp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
						for range rng.IntN(3) {
							a := stream.AbortedTxn{ProducerID: rng.Int64N(1e6), FirstOffset: rng.Int64N(1e9)}
							fp.aborted = append(fp.aborted, a)
							ka := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
							ka.ProducerID, ka.FirstOffset = a.ProducerID, a.FirstOffset
							kp.AbortedTransactions = append(kp.AbortedTransactions, ka)
						}
						ft.parts[len(ft.parts)-1] = fp
					}
					if v >= 16 && rng.IntN(3) == 0 { // NOT_LEADER_OR_FOLLOWER naming the leader (KIP-951)
						h := leaderHint{id: rng.Int32N(5), epoch: rng.Int32N(100)}
						ft.parts[len(ft.parts)-1].leader = &h
						kp.CurrentLeader.LeaderID, kp.CurrentLeader.LeaderEpoch = h.id, h.epoch
					}
					kt.Partitions = append(kt.Partitions, kp)
				}
				plan.topics = append(plan.topics, ft)
				want.Topics = append(want.Topics, kt)
			}
			if v >= 16 {
				for id := range rng.IntN(3) {
					br := stream.BrokerInfo{ID: int32(id), Host: fmt.Sprintf("node-%d.example", id), Port: 9092 + int32(id)}
					plan.brokers = append(plan.brokers, br)
					kb := kmsg.NewFetchResponseBroker()
					kb.NodeID, kb.Host, kb.Port = br.ID, br.Host, br.Port
					want.Brokers = append(want.Brokers, kb)
				}
			}
			body, splits, recBytes := plan.encode(nil)
			var got []byte
			prev := 0
			var n int64
			for _, s := range splits {
				got = append(got, body[prev:s.at]...)
				for _, r := range s.rr.Ranges {
					chunk := make([]byte, r.Len)
					r.File.ReadAt(chunk, r.Pos)
					got = append(got, chunk...)
					n += r.Len
				}
				prev = s.at
			}
			got = append(got, body[prev:]...)
			if n != recBytes {
				t.Fatalf("v%d: record bytes %d, splits hold %d", v, recBytes, n)
			}
			if exp := want.AppendTo(nil); !bytes.Equal(got, exp) {
				t.Fatalf("v%d trial %d: encoding differs from kmsg\n got %x\nwant %x", v, trial, got, exp)
			}
			// And kmsg decodes it back.
			back := kmsg.NewPtrFetchResponse()
			back.Version = v
			if err := back.ReadFrom(got); err != nil {
				t.Fatalf("v%d: kmsg cannot decode our encoding: %v", v, err)
			}
		}
	}
}

// FuzzRequest: arbitrary frame bytes through the request decoding path never panic, and
// whatever decodes re-encodes and decodes again.
func FuzzRequest(f *testing.F) {
	apis := newAPITable()
	for _, a := range apis {
		for v := a.min; v <= a.max; v++ {
			req := kmsg.RequestForKey(a.key)
			req.SetVersion(v)
			f.Add(frameFor(req, 7, "fuzz"))
		}
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
	f.Add(frameFor(meta, 1, "c"))
	prod := kmsg.NewPtrProduceRequest()
	prod.Version = 9
	prod.Acks = -1
	prod.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: make([]byte, 70)}}}}
	f.Add(frameFor(prod, 2, ""))
	f.Add([]byte{0, 18, 0, 9, 0, 0, 0, 1, 255, 255})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		hdr, req, err := apis.decodeRequest(frame)
		if err != nil {
			return
		}
		if req.Key() != hdr.key || req.GetVersion() != hdr.version {
			t.Fatalf("decoded %d v%d from header %d v%d", req.Key(), req.GetVersion(), hdr.key, hdr.version)
		}
		again := kmsg.RequestForKey(hdr.key)
		again.SetVersion(hdr.version)
		if err := again.ReadFrom(req.AppendTo(nil)); err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
	})
}

// frameFor encodes a request frame (without size prefix) as a client would.
func frameFor(req kmsg.Request, corr int32, clientID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}
