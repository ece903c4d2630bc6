package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/raft/v3/raftpb"
)

func sampleBatch(t testing.TB) []byte {
	m := &pb.Message{Type: pb.MsgApp.Enum(), From: new(uint64(1)), To: new(uint64(2)), Term: new(uint64(3)),
		Entries: []*pb.Entry{{Term: new(uint64(3)), Index: new(uint64(9)), Data: []byte("payload")}}}
	em, err := encodeMsg(5, m)
	if err != nil {
		t.Fatal(err)
	}
	return appendBatch(nil, []heartbeat{{group: 5, term: 3, commit: 8}, {group: 6, term: 1, flags: hbResponse | hbQuiesce}}, []encodedMsg{em})
}

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	b := append(appendHello(nil, 1, 2), sampleBatch(t)...)
	r := bytes.NewReader(b)
	kind, body, buf, err := readFrame(r, nil)
	if err != nil || kind != frameHello {
		t.Fatalf("hello: kind %d, %v", kind, err)
	}
	if from, to, err := decodeHello(body); from != 1 || to != 2 || err != nil {
		t.Fatalf("hello %d->%d %v", from, to, err)
	}
	kind, body, _, err = readFrame(r, buf)
	if err != nil || kind != frameBatch {
		t.Fatalf("batch: kind %d, %v", kind, err)
	}
	hbs, msgs, err := decodeBatch(body)
	if err != nil || len(hbs) != 2 || len(msgs) != 1 {
		t.Fatalf("batch: %d heartbeats, %d messages, %v", len(hbs), len(msgs), err)
	}
	if hbs[1].flags != hbResponse|hbQuiesce || hbs[0].commit != 8 || msgs[0].group != 5 || string(msgs[0].msg.Entries[0].Data) != "payload" {
		t.Fatalf("decoded %+v %v", hbs, msgs[0].msg)
	}
	if _, _, _, err := readFrame(r, nil); err != io.EOF {
		t.Fatalf("after the frames: %v", err)
	}
}

func TestFrameRejects(t *testing.T) {
	t.Parallel()
	good := sampleBatch(t)
	for name, mutate := range map[string]func([]byte){
		"version": func(b []byte) { b[4] = 9 },
		"crc":     func(b []byte) { b[len(b)-1] ^= 1 },
		"length":  func(b []byte) { b[0] = 0xff },
	} {
		b := bytes.Clone(good)
		mutate(b)
		if _, _, _, err := readFrame(bytes.NewReader(b), nil); !errors.Is(err, errBadFrame) {
			t.Errorf("%s: %v, want errBadFrame", name, err)
		}
	}
}

// TestMalformedFrameClosesOneConnection: garbage from a peer's address closes that
// connection; the host keeps serving its real peers.
func TestMalformedFrameClosesOneConnection(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	l := c.leader(1)
	for _, junk := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		appendHello(nil, 9, l), // an unknown node
		append(appendHello(nil, 2, l), appendFrame(nil, frameBatch, func(b []byte) []byte { return append(b, 0, 0, 0, 5) })...), // 5 heartbeats in 0 bytes
	} {
		conn, err := net.Dial("tcp", c.addrs[l])
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(junk)
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := bufio.NewReader(conn).ReadByte(); err == nil {
			t.Fatal("the host answered garbage")
		}
		conn.Close()
	}
	c.propose(l, 1, "still serving")
	c.converged(1, []string{"still serving"})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(appendHello(nil, 1, 2))
	f.Add(sampleBatch(f))
	f.Add(appendBatch(nil, nil, nil))
	f.Add(appendRange(nil, frameRangeReq, rangeMsg{id: 1, group: 2, data: []byte(`{"from":0}`)}))
	f.Add(appendRange(nil, frameRangeResp, rangeMsg{id: 1, group: 2, status: rangeError, data: []byte("no")}))
	f.Add(appendJoinState(nil, joinAsk, 5, joinEmpty))
	f.Add(appendJoinWake(nil, []uint64{3, 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, body, _, err := readFrame(bytes.NewReader(b), nil)
		if err != nil {
			return
		}
		switch kind {
		case frameHello:
			decodeHello(body)
		case frameBatch:
			hbs, msgs, err := decodeBatch(body)
			if err != nil {
				return
			}
			ems := make([]encodedMsg, len(msgs))
			for i, m := range msgs {
				data, err := proto.Marshal(m.msg)
				if err != nil {
					t.Fatal(err)
				}
				ems[i] = encodedMsg{group: m.group, data: data}
			}
			again := appendBatch(nil, hbs, ems)
			if _, _, _, err := readFrame(bytes.NewReader(again), nil); err != nil {
				t.Fatalf("re-encoded batch unreadable: %v", err)
			}
		case frameJoin:
			op, dir, state, groups, err := decodeJoin(body)
			if err != nil {
				return
			}
			again := appendJoinState(nil, op, dir, state)
			if op == joinWake {
				again = appendJoinWake(nil, groups)
			}
			if _, b, _, err := readFrame(bytes.NewReader(again), nil); err != nil || !bytes.Equal(b, body) {
				t.Fatalf("re-encoded join frame differs: %v", err)
			}
		case frameRangeReq, frameRangeResp:
			m, err := decodeRange(body)
			if err != nil {
				return
			}
			_, again, _, err := readFrame(bytes.NewReader(appendRange(nil, kind, m)), nil)
			if err != nil || !bytes.Equal(again, body) {
				t.Fatalf("re-encoded range message differs: %v", err)
			}
		}
	})
}
