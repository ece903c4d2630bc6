package kafka

// Writing a Fetch response without copying record bytes through user space.
//
// kmsg encodes a FetchResponse as one byte slice, which would mean reading every record byte
// into memory first. Instead fetchPlan.encode produces the same bytes kmsg would, except that
// each partition's RecordBatches field stops after its length prefix: the encoding is split at
// those points, and write sends the byte pieces through the buffered writer and the records in
// between straight from the segment files with sendfile(2). The length prefixes are known up
// front because a log read reports its total size. TestFetchEncodingMatchesKmsg checks that
// the pieces, with the records filled in, are byte for byte kmsg's encoding for every version.
//
// Layout (versions 4-18; "flexible" = v12+, where arrays and strings use uvarint lengths + 1
// and every struct ends with tagged fields, here always none):
//
//	ThrottleMillis int32 | ErrorCode int16 (v7+) | SessionID int32 (v7+)
//	Topics: array of
//	  Topic string (v4-12) | TopicID [16]byte (v13+)
//	  Partitions: array of
//	    Partition int32 | ErrorCode int16 | HighWatermark int64 | LastStableOffset int64
//	    LogStartOffset int64 (v5+) | AbortedTransactions nullable array of
//	      (ProducerID int64 | FirstOffset int64 | tags): null for read_uncommitted
//	    PreferredReadReplica int32 (v11+, always -1) | RecordBatches nullable bytes | tags
//	  tags
//	tags

import (
	"encoding/binary"
	"fmt"
	"io"
	"syscall"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/platform"
	"github.com/yardmq/yard/internal/stream"
)

type fetchPlan struct {
	version   int16
	errCode   int16
	sessionID int32
	topics    []fetchTopic
	brokers   []stream.BrokerInfo // v16+: NodeEndpoints, the leaders named by CurrentLeader
}

type fetchTopic struct {
	name  string // as the request named it: empty in v13+
	topic string // the topic's name, whatever the version
	id    [16]byte
	parts []fetchPart
}

type fetchPart struct {
	partition          int32
	errCode            int16
	hwm, lso, logStart int64
	rr                 *log.ReadResult // nil: no records
	committed          bool            // read_committed: aborted is sent (even empty)
	aborted            []stream.AbortedTxn
	leader             *leaderHint // v16+: CurrentLeader, beside NOT_LEADER_OR_FOLLOWER
}

func (p *fetchPart) release() {
	if p.rr != nil {
		p.rr.Release()
		p.rr = nil
	}
}

func (p *fetchPlan) release() {
	for i := range p.topics {
		for j := range p.topics[i].parts {
			p.topics[i].parts[j].release()
		}
	}
}

// split is a point in the encoded bytes where a partition's records go.
type split struct {
	at int
	rr *log.ReadResult
}

func appendArrayLen(b []byte, n int, flexible bool) []byte {
	if flexible {
		return binary.AppendUvarint(b, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// encode appends the response body to dst and returns where records must be inserted, and the
// total record bytes.
func (p *fetchPlan) encode(dst []byte) ([]byte, []split, int64) {
	flexible := p.version >= 12
	var splits []split
	var recBytes int64
	b := binary.BigEndian.AppendUint32(dst, 0) // ThrottleMillis
	if p.version >= 7 {
		b = binary.BigEndian.AppendUint16(b, uint16(p.errCode))
		b = binary.BigEndian.AppendUint32(b, uint32(p.sessionID))
	}
	b = appendArrayLen(b, len(p.topics), flexible)
	for i := range p.topics {
		t := &p.topics[i]
		if p.version >= 13 {
			b = append(b, t.id[:]...)
		} else if flexible {
			b = binary.AppendUvarint(b, uint64(len(t.name))+1)
			b = append(b, t.name...)
		} else {
			b = binary.BigEndian.AppendUint16(b, uint16(len(t.name)))
			b = append(b, t.name...)
		}
		b = appendArrayLen(b, len(t.parts), flexible)
		for j := range t.parts {
			fp := &t.parts[j]
			b = binary.BigEndian.AppendUint32(b, uint32(fp.partition))
			b = binary.BigEndian.AppendUint16(b, uint16(fp.errCode))
			b = binary.BigEndian.AppendUint64(b, uint64(fp.hwm))
			b = binary.BigEndian.AppendUint64(b, uint64(fp.lso))
			if p.version >= 5 {
				b = binary.BigEndian.AppendUint64(b, uint64(fp.logStart))
			}
			switch {
			case fp.committed:
				b = appendArrayLen(b, len(fp.aborted), flexible)
				for _, a := range fp.aborted {
					b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
					b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
					if flexible {
						b = append(b, 0)
					}
				}
			case flexible: // AbortedTransactions: null
				b = append(b, 0)
			default:
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			}
			if p.version >= 11 {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff) // PreferredReadReplica -1
			}
			var n int64
			if fp.rr != nil {
				n = fp.rr.Bytes
			}
			if flexible {
				b = binary.AppendUvarint(b, uint64(n)+1)
			} else {
				b = binary.BigEndian.AppendUint32(b, uint32(n))
			}
			if n > 0 {
				splits = append(splits, split{len(b), fp.rr})
				recBytes += n
			}
			switch {
			case fp.leader != nil && p.version >= 16:
				// One tagged field, CurrentLeader (tag 1): LeaderID, LeaderEpoch, no tags.
				b = append(b, 1, 1, 9)
				b = binary.BigEndian.AppendUint32(b, uint32(fp.leader.id))
				b = binary.BigEndian.AppendUint32(b, uint32(fp.leader.epoch))
				b = append(b, 0)
			case flexible:
				b = append(b, 0) // partition tags
			}
		}
		if flexible {
			b = append(b, 0) // topic tags
		}
	}
	switch {
	case len(p.brokers) > 0 && p.version >= 16:
		// One tagged field, NodeEndpoints (tag 0): NodeID, Host, Port, Rack (null), no tags.
		var ne []byte
		ne = binary.AppendUvarint(ne, uint64(len(p.brokers))+1)
		for _, br := range p.brokers {
			ne = binary.BigEndian.AppendUint32(ne, uint32(br.ID))
			ne = binary.AppendUvarint(ne, uint64(len(br.Host))+1)
			ne = append(ne, br.Host...)
			ne = binary.BigEndian.AppendUint32(ne, uint32(br.Port))
			ne = append(ne, 0, 0)
		}
		b = append(b, 1, 0)
		b = binary.AppendUvarint(b, uint64(len(ne)))
		b = append(b, ne...)
	case flexible:
		b = append(b, 0) // response tags
	}
	return b, splits, recBytes
}

// write sends the whole response frame: size prefix, header, body with records.
func (p *fetchPlan) write(c *conn, hdr *reqHeader) error {
	b := append(c.wbuf[:0], 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(hdr.correlationID))
	if responseHeaderFlexible(hdr) {
		b = append(b, 0)
	}
	b, splits, recBytes := p.encode(b)
	total := int64(len(b)) - 4 + recBytes
	if total > 1<<31-1 {
		panic(fmt.Sprintf("BUG: fetch response of %d bytes", total))
	}
	binary.BigEndian.PutUint32(b, uint32(total))
	c.wbuf = b
	prev := 0
	for _, s := range splits {
		if _, err := c.writer().Write(b[prev:s.at]); err != nil {
			return fmt.Errorf("cannot write fetch response: %w", err)
		}
		if _, err := c.writeRanges(s.rr.Ranges); err != nil {
			return err
		}
		prev = s.at
	}
	if _, err := c.writer().Write(b[prev:]); err != nil {
		return fmt.Errorf("cannot write fetch response: %w", err)
	}
	return nil
}

// sendfileMinBytes: smaller ranges are copied through the buffer, which costs less than
// flushing it for a separate sendfile call.
const sendfileMinBytes = 16 << 10

type fdFile interface{ Fd() uintptr }

// writeRanges sends record bytes: sendfile from OS files to a TCP socket, ReadAt copies
// otherwise (in-memory test file systems, non-TCP connections). It returns how many bytes
// went by sendfile.
func (c *conn) writeRanges(ranges []log.Range) (int64, error) {
	var sent int64
	for _, r := range ranges {
		f, isOS := r.File.(fdFile)
		sc, isTCP := c.nc.(syscall.Conn)
		if isOS && isTCP && platform.SendfileSupported && r.Len >= sendfileMinBytes {
			if err := c.writer().Flush(); err != nil {
				return sent, fmt.Errorf("cannot write fetch response: %w", err)
			}
			if err := platform.Sendfile(sc, f.Fd(), r.Pos, r.Len); err != nil {
				return sent, fmt.Errorf("cannot sendfile records: %w", err)
			}
			sent += r.Len
			continue
		}
		if _, err := io.Copy(c.writer(), io.NewSectionReader(r.File, r.Pos, r.Len)); err != nil {
			return sent, fmt.Errorf("cannot copy records: %w", err)
		}
	}
	return sent, nil
}
