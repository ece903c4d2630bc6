package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/txn"
)

// startTxnServer is startServer with a group coordinator and a transaction coordinator.
func startTxnServer(t *testing.T, mod func(*txn.Config)) (*testServer, *txn.Coordinator) {
	t.Helper()
	var tc *txn.Coordinator
	ts := startServer(t, func(cfg *Config) {
		parts, err := group.StreamOffsetsPartitions(cfg.Streams, 5)
		if err != nil {
			t.Fatal(err)
		}
		g, err := group.Open(group.Config{
			OffsetsPartitions:     parts,
			Topics:                group.StreamTopics(cfg.Streams),
			MinSessionTimeout:     100 * time.Millisecond,
			InitialRebalanceDelay: 100 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		tcfg := txn.Config{
			Dir:                t.TempDir(),
			LogOptions:         log.Options{SyncPolicy: log.SyncAlways},
			Partitions:         txn.StreamPartitions(cfg.Streams),
			Offsets:            txn.GroupOffsets(g),
			AllocateProducerID: cfg.Streams.AllocateProducerID,
			TransactionVersion: txn.MaxTransactionVersion, // the broker's default
		}
		if mod != nil {
			mod(&tcfg)
		}
		c, err := txn.Open(tcfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.Close()
			g.Close()
		})
		cfg.Groups, cfg.Txn, tc = g, c, c
	})
	return ts, tc
}

func createTopic(t *testing.T, ts *testServer, name string, partitions int32) {
	t.Helper()
	if _, err := ts.st.CreateTopic(name, partitions, nil, false); err != nil {
		t.Fatal(err)
	}
}

// consumeAll reads topic from the start until the end offsets of the isolation level, and
// returns the values read.
func consumeAll(t *testing.T, ts *testServer, topic string, committed bool) []string {
	t.Helper()
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	opts = append(opts, kgo.FetchIsolationLevel(level))
	cl := ts.client(t, opts...)
	ctx := testCtx(t)
	// The end: ListOffsets latest at the isolation level.
	req := kmsg.NewListOffsetsRequest()
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	tp, _ := ts.st.Topic(topic)
	n := tp.NumPartitions()
	for p := int32(0); p < n; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("list offsets: %v", kerr.ErrorForCode(p.ErrorCode))
		}
		ends[p.Partition] = p.Offset
	}
	done := func(pos map[int32]int64) bool {
		for p, e := range ends {
			if pos[p] < e {
				return false
			}
		}
		return true
	}
	pos := map[int32]int64{}
	var out []string
	for !done(pos) {
		// A read_committed consumer skips aborted records and markers: its position can stay
		// below the end offset with nothing more to return, so each poll is bounded.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			t.Fatal("timed out consuming")
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch: %v", err)
			}
		})
		if timedOut {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			pos[r.Partition] = r.Offset + 1
		})
	}
	return out
}

func txnProducer(t *testing.T, ts *testServer, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return ts.client(t, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic("t")}, opts...)...)
}

func produceTxn(t *testing.T, cl *kgo.Client, commit bool, values ...string) {
	t.Helper()
	ctx := testCtx(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction: %v", err)
	}
}

// TestTransactionsReadCommitted: committed transactions are seen by a read_committed
// consumer, an aborted one never; a read_uncommitted consumer sees both.
func TestTransactionsReadCommitted(t *testing.T) {
	ts, _ := startTxnServer(t, nil)
	createTopic(t, ts, "t", 1)
	p := txnProducer(t, ts, "tx-1")
	produceTxn(t, p, true, "c1", "c2")
	produceTxn(t, p, false, "a1", "a2")
	produceTxn(t, p, true, "c3")

	if got := consumeAll(t, ts, "t", true); fmt.Sprint(got) != "[c1 c2 c3]" {
		t.Errorf("read_committed saw %v, want [c1 c2 c3]", got)
	}
	if got := consumeAll(t, ts, "t", false); fmt.Sprint(got) != "[c1 c2 a1 a2 c3]" {
		t.Errorf("read_uncommitted saw %v, want [c1 c2 a1 a2 c3]", got)
	}
}

// TestTransactionLastStableOffset: an open transaction holds the LSO at its first offset:
// ListOffsets read_committed answers it, and a read_committed fetch returns nothing past it.
func TestTransactionLastStableOffset(t *testing.T) {
	ts, _ := startTxnServer(t, nil)
	createTopic(t, ts, "t", 1)
	plain := ts.client(t, kgo.DefaultProduceTopic("t"))
	ctx := testCtx(t)
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("p0")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := txnProducer(t, ts, "tx-lso")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("p2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	part := partOf(t, ts, "t", 0)
	if lso, hw := part.LastStableOffset(), part.HighWatermark(); lso != 1 || hw != 3 {
		t.Fatalf("LSO %d, HW %d; want 1, 3", lso, hw)
	}
	rc := ts.raw(t)
	req := listOffsetsReq("t", -1)
	req.IsolationLevel = 1
	if got := rc.roundTrip(req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].Offset; got != 1 {
		t.Errorf("ListOffsets read_committed latest %d, want 1", got)
	}
	if got := consumeAll(t, ts, "t", true); fmt.Sprint(got) != "[p0]" {
		t.Errorf("read_committed saw %v with a transaction open, want [p0]", got)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if lso, hw := part.LastStableOffset(), part.HighWatermark(); lso != hw || hw != 4 {
		t.Fatalf("after commit LSO %d, HW %d; want 4, 4", lso, hw)
	}
	if got := consumeAll(t, ts, "t", true); fmt.Sprint(got) != "[p0 open p2]" {
		t.Errorf("read_committed saw %v, want [p0 open p2]", got)
	}
}

// TestTransactionalProduceNotAdded: a transactional batch for a partition not added to the
// transaction is refused with INVALID_TXN_STATE.
func TestTransactionalProduceNotAdded(t *testing.T) {
	ts, tc := startTxnServer(t, nil)
	createTopic(t, ts, "t", 1)
	pid, epoch, err := tc.InitProducerID("raw", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	b := makeBatch(pid, epoch, 0, "x")
	setTransactional(b)
	r := rc.roundTrip(produceReq(9, "t", 0, b)).(*kmsg.ProduceResponse)
	if code := r.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce outside a transaction: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if hw := partOf(t, ts, "t", 0).HighWatermark(); hw != 0 {
		t.Fatalf("refused batch was written: HW %d", hw)
	}
}

// TestTransactionZombieFenced: a second producer with the same transactional ID fences the
// first: the first's open transaction is aborted and its further requests fail.
func TestTransactionZombieFenced(t *testing.T) {
	ts, _ := startTxnServer(t, nil)
	createTopic(t, ts, "t", 1)
	ctx := testCtx(t)
	zombie := txnProducer(t, ts, "same")
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := txnProducer(t, ts, "same")
	produceTxn(t, fresh, true, "fresh")

	err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie2")}).FirstErr()
	if err == nil {
		err = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidProducerIDMapping) {
		t.Fatalf("zombie was not fenced: %v", err)
	}
	if got := consumeAll(t, ts, "t", true); fmt.Sprint(got) != "[fresh]" {
		t.Errorf("read_committed saw %v, want [fresh]", got)
	}
}

// TestTransactionTimeoutAborts: a transaction left open beyond its timeout is aborted (and
// its producer fenced); the LSO moves on.
func TestTransactionTimeoutAborts(t *testing.T) {
	ts, tc := startTxnServer(t, func(c *txn.Config) { c.AbortCheckInterval = 50 * time.Millisecond })
	createTopic(t, ts, "t", 1)
	ctx := testCtx(t)
	p := txnProducer(t, ts, "slow", kgo.TransactionTimeout(time.Second))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the timeout abort", func() bool {
		d, err := tc.Describe("slow")
		return err == nil && d.State == txn.CompleteAbort
	})
	if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("commit of a timed-out transaction succeeded")
	}
	part := partOf(t, ts, "t", 0)
	if lso, hw := part.LastStableOffset(), part.HighWatermark(); lso != hw {
		t.Fatalf("LSO %d below HW %d after the abort", lso, hw)
	}
	if got := consumeAll(t, ts, "t", true); len(got) != 0 {
		t.Errorf("read_committed saw %v, want nothing", got)
	}
}

// TestDescribeListTransactions: DescribeTransactions and ListTransactions as kafka-transactions
// uses them.
func TestDescribeListTransactions(t *testing.T) {
	ts, _ := startTxnServer(t, nil)
	createTopic(t, ts, "t", 2)
	ctx := testCtx(t)
	p := txnProducer(t, ts, "desc")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := ts.admin(t)
	ds, err := adm.DescribeTransactions(ctx, "desc", "nope")
	if err != nil {
		t.Fatal(err)
	}
	d := ds["desc"]
	if d.Err != nil || d.State != "Ongoing" || d.ProducerID < 0 || d.StartTimestamp <= 0 || len(d.Topics["t"]) != 1 {
		t.Errorf("describe desc: %+v", d)
	}
	if !errors.Is(ds["nope"].Err, kerr.TransactionalIDNotFound) {
		t.Errorf("describe unknown: %v", ds["nope"].Err)
	}
	ls, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := ls.TransactionalIDs(); fmt.Sprint(ids) != "[desc]" {
		t.Errorf("list Ongoing: %v", ids)
	}
	if err := p.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	ls, err = adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := ls.TransactionalIDs(); len(ids) != 0 {
		t.Errorf("list Ongoing after abort: %v", ids)
	}
}

// TestGroupTransactSessionEOS: consume-transform-produce with franz-go's GroupTransactSession
// across a rebalance (a second member joins half way): every input record is in the output
// exactly once as read_committed consumers see it, and the group's offsets cover the input.
func TestGroupTransactSessionEOS(t *testing.T) {
	ts, _ := startTxnServer(t, nil)
	createTopic(t, ts, "in", 4)
	createTopic(t, ts, "out", 1)
	ctx := testCtx(t)
	const n = 200
	plain := ts.client(t)
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: "in", Partition: int32(i % 4), Value: []byte(fmt.Sprintf("%03d", i))}
		if err := plain.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	processed := 0
	run := func(id string, stop <-chan struct{}) error {
		s, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(ts.addr), kgo.TransactionalID(id), kgo.ConsumerGroup("eos"),
			kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("out"),
			kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.RequireStableFetchOffsets(),
		)
		if err != nil {
			return err
		}
		defer s.Close()
		for {
			select {
			case <-stop:
				return nil
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := s.PollRecords(pctx, 10)
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := s.Begin(); err != nil {
				return err
			}
			count := 0
			fs.EachRecord(func(r *kgo.Record) {
				count++
				s.Produce(ctx, &kgo.Record{Value: r.Value}, nil)
			})
			committed, err := s.End(ctx, kgo.TryCommit)
			if err != nil {
				return err
			}
			if committed {
				mu.Lock()
				processed += count
				mu.Unlock()
			}
		}
	}
	stop := make(chan struct{})
	errs := make(chan error, 2)
	go func() { errs <- run("eos-a", stop) }()
	waitFor(t, "the first member to process", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return processed > 0
	})
	go func() { errs <- run("eos-b", stop) }()
	waitFor(t, "all input to be processed", func() bool {
		got := consumeAll(t, ts, "out", true)
		return len(uniq(got)) == n
	})
	close(stop)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := consumeAll(t, ts, "out", true)
	if u := uniq(got); len(u) != n || len(got) != n {
		t.Fatalf("read_committed output has %d records, %d distinct; want %d exactly once", len(got), len(u), n)
	}
}

func uniq(s []string) []string {
	m := map[string]bool{}
	var out []string
	for _, v := range s {
		if !m[v] {
			m[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func partOf(t *testing.T, ts *testServer, topic string, p int32) *stream.Partition {
	t.Helper()
	tp, ok := ts.st.Topic(topic)
	if !ok || tp.Partition(p) == nil {
		t.Fatalf("no partition %s-%d", topic, p)
	}
	return tp.Partition(p)
}

// setTransactional sets a batch's transactional attribute (and its CRC).
func setTransactional(b []byte) {
	b[rb.OffAttributes+1] |= rb.AttrTransactional
	binary.BigEndian.PutUint32(b[rb.OffCRC:], rb.Checksum(b))
}

// TestTxnOffsetsHeldUntilCommit: offsets a transaction commits are invisible until it
// commits (OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT meanwhile), dropped
// when it aborts, and committed when it commits.
func TestTxnOffsetsHeldUntilCommit(t *testing.T) {
	ts, tc := startTxnServer(t, nil)
	createTopic(t, ts, "in", 1)
	rc := ts.raw(t)
	fetch := func(stable bool) (int64, int16) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group, req.RequireStable = 7, "g", stable
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "in", []int32{0}
		req.Topics = append(req.Topics, rt)
		p := rc.roundTrip(req).(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0]
		return p.Offset, p.ErrorCode
	}
	pid, epoch, err := tc.InitProducerID("offs", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	tp := txn.TopicPartition{Topic: "in", Partition: 0}
	for _, commit := range []bool{false, true} {
		if err := tc.AddOffsets("offs", pid, epoch, "g"); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.CommitOffsets("offs", pid, epoch, "g", map[txn.TopicPartition]txn.Offset{tp: {Offset: 7, LeaderEpoch: -1}}, false); err != nil {
			t.Fatal(err)
		}
		if off, code := fetch(true); code != kerr.UnstableOffsetCommit.Code {
			t.Fatalf("stable fetch with offsets pending: offset %d, error %v", off, kerr.ErrorForCode(code))
		}
		if off, code := fetch(false); off != -1 || code != 0 {
			t.Fatalf("fetch with offsets pending: offset %d, error %v", off, kerr.ErrorForCode(code))
		}
		if err := endErr(tc.End("offs", pid, epoch, commit, false)); err != nil {
			t.Fatal(err)
		}
		want := int64(-1)
		if commit {
			want = 7
		}
		if off, code := fetch(true); off != want || code != 0 {
			t.Fatalf("after end (commit %v): offset %d, error %v; want %d", commit, off, kerr.ErrorForCode(code), want)
		}
	}
}

// endErr is End's error alone.
func endErr(_ int64, _ int16, err error) error { return err }
