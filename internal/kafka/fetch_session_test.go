package kafka

import (
	"fmt"
	"sort"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessFetch builds a fetch of the given partitions (offsets by partition) of topic.
func sessFetch(version int16, id [16]byte, topic string, sessionID, epoch int32, offsets map[int32]int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.SessionID, req.SessionEpoch = version, 1<<20, sessionID, epoch
	req.MaxWaitMillis = 0
	if len(offsets) == 0 {
		return req
	}
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = topic, id
	var ps []int32
	for p := range offsets {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	for _, p := range ps {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, offsets[p], 1<<20
		ft.Partitions = append(ft.Partitions, fp)
	}
	req.Topics = append(req.Topics, ft)
	return req
}

// fetchRaw sends a fetch and returns the response and the size of its frame body.
func fetchRaw(t testing.TB, rc *rawConn, req *kmsg.FetchRequest) (*kmsg.FetchResponse, int) {
	t.Helper()
	corr := rc.send(req)
	b, err := rc.readFrame(corr, req.Version >= 12)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = req.Version
	if err := resp.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	return resp, len(b) + 4
}

// respParts lists "partition:records?:error" of a response, in order.
func respParts(resp *kmsg.FetchResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%d:%v:%d", p.Partition, len(p.RecordBatches) > 0, p.ErrorCode))
		}
	}
	return out
}

func produceTo(t testing.TB, cl *kgo.Client, topic string, partition int32) {
	t.Helper()
	r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v")}
	if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestFetchSessionRules checks each KIP-227 rule at the protocol level, with topic names
// (v12) and topic IDs (v13).
func TestFetchSessionRules(t *testing.T) {
	for _, version := range []int16{12, 13} {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			ts := startServer(t, nil)
			ctx := testCtx(t)
			topic := fmt.Sprint("fs", version)
			if _, err := ts.admin(t).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			tp, _ := ts.st.Topic(topic)
			id := [16]byte(tp.ID)
			pcl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			produceTo(t, pcl, topic, 0)
			rc := ts.raw(t)
			f := func(sid, epoch int32, offsets map[int32]int64) *kmsg.FetchResponse {
				resp, _ := fetchRaw(t, rc, sessFetch(version, id, topic, sid, epoch, offsets))
				return resp
			}
			expect := func(what string, resp *kmsg.FetchResponse, errCode int16, sid int32, parts ...string) {
				t.Helper()
				got := respParts(resp)
				if resp.ErrorCode != errCode || resp.SessionID != sid || fmt.Sprint(got) != fmt.Sprint(parts) {
					t.Fatalf("%s: error %d session %d parts %v, want error %d session %d parts %v", what, resp.ErrorCode, resp.SessionID, got, errCode, sid, parts)
				}
			}

			// Epoch 0, ID 0: a full fetch creating a session.
			resp := f(0, 0, map[int32]int64{0: 0, 1: 0, 2: 0})
			sid := resp.SessionID
			if sid == 0 {
				t.Fatal("no session created")
			}
			expect("create", resp, 0, sid, "0:true:0", "1:false:0", "2:false:0")
			// Incremental, epoch 1: p0 moves past its record; nothing changed, nothing sent.
			expect("idle", f(sid, 1, map[int32]int64{0: 1}), 0, sid)
			// A record on p1: only p1 is sent, though the request names no partition.
			produceTo(t, pcl, topic, 1)
			expect("new data", f(sid, 2, nil), 0, sid, "1:true:0")
			// A stale epoch, then an unknown ID.
			expect("stale epoch", f(sid, 2, nil), kerr.InvalidFetchSessionEpoch.Code, 0)
			expect("unknown id", f(sid+1, 1, nil), kerr.FetchSessionIDNotFound.Code, 0)
			// The error did not disturb the session: epoch 3 goes on. p1 moved on by the
			// client; a record on p1's offset 1 is then sent.
			expect("after errors", f(sid, 3, map[int32]int64{1: 1}), 0, sid)
			// Forgetting p1: records on p1 and p2, only p2 is sent.
			produceTo(t, pcl, topic, 1)
			produceTo(t, pcl, topic, 2)
			req := sessFetch(version, id, topic, sid, 4, nil)
			fg := kmsg.NewFetchRequestForgottenTopic()
			fg.Topic, fg.TopicID, fg.Partitions = topic, id, []int32{1}
			req.ForgottenTopics = append(req.ForgottenTopics, fg)
			resp, _ = fetchRaw(t, rc, req)
			expect("forgotten", resp, 0, sid, "2:true:0")
			// An added partition that does not exist: its error is sent every time.
			expect("add bad", f(sid, 5, map[int32]int64{2: 1, 7: 0}), 0, sid, "7:false:3")
			expect("error again", f(sid, 6, nil), 0, sid, "7:false:3")
			if version == 12 {
				// A session made with names used with topic IDs.
				resp, _ = fetchRaw(t, rc, sessFetch(13, id, topic, sid, 7, nil))
				expect("topic id mismatch", resp, kerr.FetchSessionTopicIDError.Code, 0)
			}
			// Epoch -1 naming the session: a full fetch without a session, which closes it.
			expect("final", f(sid, -1, map[int32]int64{0: 0}), 0, 0, "0:true:0")
			expect("closed", f(sid, 7, nil), kerr.FetchSessionIDNotFound.Code, 0)
			// Epoch -1 with an ID that never existed (kafka-go sends -1/-1): a full fetch.
			expect("final unknown", f(-1, -1, map[int32]int64{0: 0}), 0, 0, "0:true:0")
			// A session whose partitions are all forgotten is closed; the reply has no session.
			resp = f(0, 0, map[int32]int64{0: 0})
			sid2 := resp.SessionID
			req = sessFetch(version, id, topic, sid2, 1, nil)
			fg.Partitions = []int32{0}
			req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{fg}
			resp, _ = fetchRaw(t, rc, req)
			expect("emptied", resp, 0, 0)
			expect("emptied closed", f(sid2, 2, nil), kerr.FetchSessionIDNotFound.Code, 0)
			// A full fetch with no partitions creates no session.
			expect("empty full", f(0, 0, nil), 0, 0)
			st := ts.srv.fetchSessions.Stats()
			if st.Created != 2 || st.Closed != 2 || st.Sessions != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestFetchSessionEviction: the cache's limits and Kafka's eviction order.
func TestFetchSessionEviction(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newFetchSessionCache(2)
	c.now = func() time.Time { return now }
	create := func(parts int) int32 {
		offs := map[int32]int64{}
		for i := range parts {
			offs[int32(i)] = 0
		}
		return c.newContext(sessFetch(12, [16]byte{}, "t", 0, 0, offs)).sessionID
	}
	use := func(id, epoch int32) {
		if fc := c.newContext(sessFetch(12, [16]byte{}, "t", id, epoch, nil)); fc.errCode != 0 {
			t.Fatalf("session %d epoch %d: error %d", id, epoch, fc.errCode)
		}
	}
	a, b := create(2), create(3)
	if a == 0 || b == 0 {
		t.Fatal("sessions not created")
	}
	// Full, every session young: no room, even for a bigger session.
	if id := create(10); id != 0 {
		t.Fatal("young session evicted")
	}
	// Both old but in use: only a strictly larger session evicts the smallest (a, 2 parts).
	now = now.Add(fetchSessionMinAge + time.Second)
	use(a, 1)
	use(b, 1)
	if id := create(2); id != 0 {
		t.Fatal("session of equal size evicted another")
	}
	d := create(4)
	if d == 0 {
		t.Fatal("larger session could not evict")
	}
	if fc := c.newContext(sessFetch(12, [16]byte{}, "t", a, 2, nil)); fc.errCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("smallest session not evicted: %d", fc.errCode)
	}
	// b unused for longer than the minimum age, d used: b is stale and goes first, even
	// for a one-partition session.
	now = now.Add(fetchSessionMinAge / 2)
	use(d, 1)
	now = now.Add(fetchSessionMinAge/2 + time.Second)
	if e := create(1); e == 0 {
		t.Fatal("stale session not evicted")
	}
	if fc := c.newContext(sessFetch(12, [16]byte{}, "t", b, 2, nil)); fc.errCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatal("stale session kept")
	}
	use(d, 2)
	if st := c.Stats(); st.Evicted != 2 || st.Sessions != 2 {
		t.Fatalf("stats %+v", st)
	}
	if fetchSessionSlots != 1000 {
		t.Fatal("Kafka's default is 1000 slots")
	}
}

// TestFetchSessionFranz: franz-go consumes with sessions (created, then incremental fetches)
// and without them when disabled.
func TestFetchSessionFranz(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprint("disabled=", disable), func(t *testing.T) {
			ts := startServer(t, nil)
			ctx := testCtx(t)
			if _, err := ts.admin(t).CreateTopic(ctx, 4, 1, nil, "fr"); err != nil {
				t.Fatal(err)
			}
			pcl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			for p := range int32(4) {
				produceTo(t, pcl, "fr", p)
			}
			opts := []kgo.Opt{kgo.ConsumeTopics("fr"), kgo.FetchMaxWait(50 * time.Millisecond)}
			if disable {
				opts = append(opts, kgo.DisableFetchSessions())
			}
			cl := ts.client(t, opts...)
			// Consume what is there, then what is produced after the consumer has caught up
			// (read by incremental fetches when sessions are on).
			for got := 0; got < 8; {
				fs := cl.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					t.Fatal(err)
				}
				before := got
				got += fs.NumRecords()
				if before < 4 && got >= 4 {
					for p := range int32(4) {
						produceTo(t, pcl, "fr", p)
					}
				}
			}
			st := ts.srv.fetchSessions.Stats()
			if disable {
				if st.Created != 0 || st.Incremental != 0 {
					t.Fatalf("sessions used though disabled: %+v", st)
				}
				return
			}
			if st.Created < 1 || st.Incremental < 1 {
				t.Fatalf("no sessions used: %+v", st)
			}
		})
	}
}

// TestFetchSessionKafkaGoClientFetch: kafka-go's Client.Fetch sends session ID -1 and epoch
// -1, a full fetch in Kafka; it used to be answered FETCH_SESSION_ID_NOT_FOUND.
func TestFetchSessionKafkaGoClientFetch(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin(t).CreateTopic(ctx, 1, 1, nil, "kg"); err != nil {
		t.Fatal(err)
	}
	produceTo(t, ts.client(t), "kg", 0)
	cl := &kafkago.Client{Addr: kafkago.TCP(ts.addr)}
	resp, err := cl.Fetch(ctx, &kafkago.FetchRequest{Topic: "kg", Partition: 0, Offset: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error != nil {
		t.Fatal(resp.Error)
	}
	r, err := resp.Records.ReadRecord()
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset != 0 || resp.HighWatermark != 1 {
		t.Fatalf("record at %d, high watermark %d", r.Offset, resp.HighWatermark)
	}
}

// TestFetchSessionBandwidth measures what an idle consumer of many partitions receives over
// N polls with full fetches and with an incremental session.
func TestFetchSessionBandwidth(t *testing.T) {
	const parts, polls = 128, 20
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin(t).CreateTopic(ctx, parts, 1, nil, "bw"); err != nil {
		t.Fatal(err)
	}
	offs := map[int32]int64{}
	for p := range int32(parts) {
		offs[p] = 0
	}
	rc := ts.raw(t)
	var full, incr, reqFull, reqIncr int
	for range polls {
		req := sessFetch(12, [16]byte{}, "bw", 0, -1, offs)
		reqFull += len(req.AppendTo(nil))
		_, n := fetchRaw(t, rc, req)
		full += n
	}
	req := sessFetch(12, [16]byte{}, "bw", 0, 0, offs)
	reqIncr += len(req.AppendTo(nil))
	resp, n := fetchRaw(t, rc, req)
	incr += n
	sid := resp.SessionID
	for i := range int32(polls - 1) {
		req := sessFetch(12, [16]byte{}, "bw", sid, i+1, nil)
		reqIncr += len(req.AppendTo(nil))
		resp, n := fetchRaw(t, rc, req)
		if resp.ErrorCode != 0 || len(resp.Topics) != 0 {
			t.Fatalf("idle incremental fetch: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
		}
		incr += n
	}
	t.Logf("%d partitions, %d idle polls: responses %d bytes full, %d bytes with a session; requests %d and %d bytes", parts, polls, full, incr, reqFull, reqIncr)
	if incr*5 > full {
		t.Fatalf("session saved too little: %d vs %d", incr, full)
	}
}

// TestFetchSessionRotation: in a session, partitions that returned records move behind the
// others, so that a partition with a steady stream of data cannot take every response's byte
// budget (the client cannot reorder a session's partitions itself).
func TestFetchSessionRotation(t *testing.T) {
	ts := startServer(t, nil)
	if _, err := ts.admin(t).CreateTopic(testCtx(t), 3, 1, nil, "rot"); err != nil {
		t.Fatal(err)
	}
	pcl := ts.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, p := range []int32{0, 0, 1, 2} {
		produceTo(t, pcl, "rot", p) // one batch each
	}
	rc := ts.raw(t)
	req := sessFetch(12, [16]byte{}, "rot", 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0})
	req.MaxBytes = 1 // only the first batch found is returned (KIP-74)
	resp, _ := fetchRaw(t, rc, req)
	if got := fmt.Sprint(respParts(resp)); got != "[0:true:0 1:false:0 2:false:0]" || resp.SessionID == 0 {
		t.Fatalf("full fetch: %s session %d", got, resp.SessionID)
	}
	req = sessFetch(12, [16]byte{}, "rot", resp.SessionID, 1, map[int32]int64{0: 1})
	req.MaxBytes = 1
	resp, _ = fetchRaw(t, rc, req)
	if got := fmt.Sprint(respParts(resp)); got != "[1:true:0]" {
		t.Fatalf("incremental fetch after p0 returned data: %s, want p1's records first", got)
	}
}
