package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/raft/v3/raftpb"
)

// The transport's frames, big-endian throughout. Every frame:
//
//	0  uint32  n: length of everything after this field, frameHeaderBytes-4 <= n <= frameBytesMax
//	4  uint8   protocol version, frameVersion (1); another version closes the connection
//	5  uint8   kind: frameHello or frameBatch
//	6  uint32  CRC-32C (Castagnoli) of the body
//	10 ...     body (n-6 bytes)
//
// The first frame on a connection is a hello from the dialer; every later one is a batch or
// a range request or response (rangefetch.go) or a join frame (join.go), which travel
// between the batches.
//
//	hello: uint64 from (the dialer's node id), uint64 to (the node id it expects to reach)
//	batch: uint32 h, then h heartbeats, each 25 bytes:
//	           uint64 group, uint64 term, uint64 commit, uint8 flags
//	           (flags bit 0: a MsgHeartbeatResp, else a MsgHeartbeat;
//	            bit 1: quiesce: the leader stops ticking the group and so may the follower)
//	       uint32 m, then m messages, each: uint64 group, uint32 len, len bytes of a
//	           raftpb.Message in protobuf encoding
//
//	range request/response: uint64 id (the requester's, echoed by the response), uint64 group,
//	       uint8 status (requests 0; responses: 0, the state machine's bytes follow; 1, an
//	       error message follows), then the rest of the body: the state machine's bytes
//
//	join (join.go): uint8 op; ask (1) and answer (2): uint64 the sender's incarnation, uint8
//	       state (0 empty, 1 new, 2 formed); wake (3): uint32 n, then n uint64 group ids
//
// Heartbeats are coalesced: all groups' heartbeats to one peer travel as fixed 25-byte rows
// of one frame (their From/To are the connection's ends), the rest as full messages. A batch
// with no rows is the node-level ping that keeps the peer's liveness fresh.
const (
	frameVersion     = 1
	frameHello       = 1
	frameBatch       = 2
	frameRangeReq    = 3
	frameRangeResp   = 4
	frameJoin        = 5
	rangeHeaderBytes = 17
	frameHeaderBytes = 10
	frameBytesMax    = 64 << 20
	helloBytes       = 16
	heartbeatBytes   = 25

	hbResponse = 1 << 0
	hbQuiesce  = 1 << 1
)

var errBadFrame = errors.New("invalid cluster frame")

// heartbeat is one coalesced heartbeat row.
type heartbeat struct {
	group, term, commit uint64
	flags               byte
}

// groupMsg is one Raft message of one group.
type groupMsg struct {
	group uint64
	msg   *pb.Message
}

// appendFrame appends a frame of kind whose body is produced by body.
func appendFrame(dst []byte, kind byte, body func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, frameVersion, kind, 0, 0, 0, 0)
	dst = body(dst)
	b := dst[start+frameHeaderBytes:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	binary.BigEndian.PutUint32(dst[start+6:], crc32.Checksum(b, crcTable))
	return dst
}

func appendHello(dst []byte, from, to uint64) []byte {
	return appendFrame(dst, frameHello, func(b []byte) []byte {
		b = binary.BigEndian.AppendUint64(b, from)
		return binary.BigEndian.AppendUint64(b, to)
	})
}

// appendBatch appends one batch frame. msgs are already protobuf-encoded.
func appendBatch(dst []byte, hbs []heartbeat, msgs []encodedMsg) []byte {
	return appendFrame(dst, frameBatch, func(b []byte) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(hbs)))
		for _, h := range hbs {
			b = binary.BigEndian.AppendUint64(b, h.group)
			b = binary.BigEndian.AppendUint64(b, h.term)
			b = binary.BigEndian.AppendUint64(b, h.commit)
			b = append(b, h.flags)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(msgs)))
		for _, m := range msgs {
			b = binary.BigEndian.AppendUint64(b, m.group)
			b = binary.BigEndian.AppendUint32(b, uint32(len(m.data)))
			b = append(b, m.data...)
		}
		return b
	})
}

// rangeMsg is a range request or response (rangefetch.go).
type rangeMsg struct {
	id, group uint64
	status    byte
	data      []byte
}

// Range response statuses.
const (
	rangeOK    = 0
	rangeError = 1
)

func appendRange(dst []byte, kind byte, m rangeMsg) []byte {
	return appendFrame(dst, kind, func(b []byte) []byte {
		b = binary.BigEndian.AppendUint64(b, m.id)
		b = binary.BigEndian.AppendUint64(b, m.group)
		b = append(b, m.status)
		return append(b, m.data...)
	})
}

// decodeRange decodes a range request or response body; its data does not alias body.
func decodeRange(body []byte) (rangeMsg, error) {
	if len(body) < rangeHeaderBytes {
		return rangeMsg{}, fmt.Errorf("%w: range message of %d bytes", errBadFrame, len(body))
	}
	m := rangeMsg{id: binary.BigEndian.Uint64(body), group: binary.BigEndian.Uint64(body[8:]), status: body[16],
		data: append([]byte(nil), body[rangeHeaderBytes:]...)}
	if m.status > rangeError {
		return rangeMsg{}, fmt.Errorf("%w: range message status %d", errBadFrame, m.status)
	}
	return m, nil
}

// encodedMsg is a message encoded for the wire, with its size known before framing.
type encodedMsg struct {
	group uint64
	data  []byte
}

func encodeMsg(group uint64, m *pb.Message) (encodedMsg, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return encodedMsg{}, fmt.Errorf("cannot encode raft message: %w", err)
	}
	return encodedMsg{group: group, data: b}, nil
}

// readFrame reads one frame from r into buf (grown as needed) and returns its kind and body.
func readFrame(r io.Reader, buf []byte) (kind byte, body []byte, _ []byte, err error) {
	var hdr [frameHeaderBytes]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < frameHeaderBytes-4 || n > frameBytesMax {
		return 0, nil, buf, fmt.Errorf("%w: length %d", errBadFrame, n)
	}
	if hdr[4] != frameVersion {
		return 0, nil, buf, fmt.Errorf("%w: version %d", errBadFrame, hdr[4])
	}
	bl := int(n) - (frameHeaderBytes - 4)
	if cap(buf) < bl {
		buf = make([]byte, bl)
	}
	body = buf[:bl]
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, buf, fmt.Errorf("%w: %w", errBadFrame, err)
	}
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(hdr[6:]) {
		return 0, nil, buf, fmt.Errorf("%w: CRC mismatch", errBadFrame)
	}
	return hdr[5], body, buf, nil
}

func decodeHello(body []byte) (from, to uint64, err error) {
	if len(body) != helloBytes {
		return 0, 0, fmt.Errorf("%w: hello of %d bytes", errBadFrame, len(body))
	}
	return binary.BigEndian.Uint64(body), binary.BigEndian.Uint64(body[8:]), nil
}

// decodeBatch decodes a batch body. It never reads past body; messages do not alias it.
func decodeBatch(body []byte) ([]heartbeat, []groupMsg, error) {
	if len(body) < 4 {
		return nil, nil, fmt.Errorf("%w: batch of %d bytes", errBadFrame, len(body))
	}
	nh := binary.BigEndian.Uint32(body)
	body = body[4:]
	if uint64(nh)*heartbeatBytes > uint64(len(body)) {
		return nil, nil, fmt.Errorf("%w: %d heartbeats in %d bytes", errBadFrame, nh, len(body))
	}
	hbs := make([]heartbeat, nh)
	for i := range hbs {
		hbs[i] = heartbeat{
			group:  binary.BigEndian.Uint64(body),
			term:   binary.BigEndian.Uint64(body[8:]),
			commit: binary.BigEndian.Uint64(body[16:]),
			flags:  body[24],
		}
		body = body[heartbeatBytes:]
	}
	if len(body) < 4 {
		return nil, nil, fmt.Errorf("%w: no message count", errBadFrame)
	}
	nm := binary.BigEndian.Uint32(body)
	body = body[4:]
	if uint64(nm)*12 > uint64(len(body)) {
		return nil, nil, fmt.Errorf("%w: %d messages in %d bytes", errBadFrame, nm, len(body))
	}
	msgs := make([]groupMsg, 0, nm)
	for i := uint32(0); i < nm; i++ {
		if len(body) < 12 {
			return nil, nil, fmt.Errorf("%w: message %d truncated", errBadFrame, i)
		}
		g, l := binary.BigEndian.Uint64(body), binary.BigEndian.Uint32(body[8:])
		body = body[12:]
		if int64(l) > int64(len(body)) {
			return nil, nil, fmt.Errorf("%w: message %d of %d bytes with %d left", errBadFrame, i, l, len(body))
		}
		m := &pb.Message{}
		if err := proto.Unmarshal(body[:l], m); err != nil {
			return nil, nil, fmt.Errorf("%w: message %d: %w", errBadFrame, i, err)
		}
		body = body[l:]
		msgs = append(msgs, groupMsg{group: g, msg: m})
	}
	if len(body) != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes after the messages", errBadFrame, len(body))
	}
	return hbs, msgs, nil
}
