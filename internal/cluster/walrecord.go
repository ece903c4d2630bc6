package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	pb "go.etcd.io/raft/v3/raftpb"
)

// The write-ahead log's bytes, big-endian throughout.
//
// A segment file, named %020d.wal after its sequence number, starts with an 8-byte header:
//
//	0  7 bytes  magic "yardwal"
//	7  1 byte   format version, walVersion (1)
//
// followed by records, each:
//
//	0  uint32   n: length of the body (type byte + payload), 1 <= n <= walRecordBytesMax
//	4  uint32   CRC-32C (Castagnoli) of the body
//	8  uint8    record type
//	9  n-1      payload
//
// Record types and their payloads:
//
//	1 entries:   uint64 group, uint32 count, then count times:
//	             uint64 term, uint64 index, uint8 entry type (raftpb.EntryType), uint32 len, len bytes data
//	2 hardstate: uint64 group, uint64 term, uint64 vote, uint64 commit
//	3 removed:   uint64 group: the group was removed (Host.RemoveGroup); recovery forgets
//	             what came before for it, and nothing comes after
//
// An entries record for group g whose first index is at or below g's last logged index
// replaces g's entries from that index on (Raft overwrote an uncommitted suffix). Every
// segment after the first starts with a hardstate record for every group the log knew when
// it was created, so a segment can be removed once every group's entries in it lie at or
// below that group's snapshot (see wal.gc).
const (
	walMagic          = "yardwal"
	walVersion        = 1
	walHeader         = walMagic + "\x01"
	walHeaderBytes    = 8 // len(walHeader)
	walRecordHeader   = 8
	walRecordBytesMax = 64 << 20

	recEntries   = 1
	recHardState = 2
	recRemoved   = 3

	entryHeaderBytes = 8 + 8 + 1 + 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord marks bytes that are not a whole, valid record: a torn tail or damage.
var errBadRecord = errors.New("invalid WAL record")

// appendRecordHeader reserves a record header in dst; finishRecord fills it in once the body
// (starting at the returned position) is complete.
func appendRecordHeader(dst []byte, typ byte) ([]byte, int) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, typ)
	return dst, start
}

func finishRecord(dst []byte, start int) []byte {
	body := dst[start+walRecordHeader:]
	if len(body) > walRecordBytesMax {
		panic(fmt.Sprintf("BUG: WAL record of %d bytes exceeds %d", len(body), walRecordBytesMax))
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, crcTable))
	return dst
}

// walEntriesRecordBytes bounds the entries of one entries record: a group's entries of a
// round (up to the uncommitted limit, 64 MiB, plus their headers) may take several records,
// each far below walRecordBytesMax.
const walEntriesRecordBytes = 16 << 20

// entriesForRecord is how many of ents (at least one) go into one entries record.
func entriesForRecord(ents []*pb.Entry) int {
	size := 0
	for i, e := range ents {
		size += entryHeaderBytes + len(e.Data)
		if size > walEntriesRecordBytes && i > 0 {
			return i
		}
	}
	return len(ents)
}

// appendEntriesRecord appends one entries record for group to dst.
func appendEntriesRecord(dst []byte, group uint64, ents []*pb.Entry) []byte {
	dst, start := appendRecordHeader(dst, recEntries)
	dst = binary.BigEndian.AppendUint64(dst, group)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ents)))
	for _, e := range ents {
		dst = binary.BigEndian.AppendUint64(dst, e.GetTerm())
		dst = binary.BigEndian.AppendUint64(dst, e.GetIndex())
		dst = append(dst, byte(e.GetType()))
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Data)))
		dst = append(dst, e.Data...)
	}
	return finishRecord(dst, start)
}

// appendHardStateRecord appends one hardstate record for group to dst.
func appendHardStateRecord(dst []byte, group uint64, hs *pb.HardState) []byte {
	dst, start := appendRecordHeader(dst, recHardState)
	dst = binary.BigEndian.AppendUint64(dst, group)
	dst = binary.BigEndian.AppendUint64(dst, hs.GetTerm())
	dst = binary.BigEndian.AppendUint64(dst, hs.GetVote())
	dst = binary.BigEndian.AppendUint64(dst, hs.GetCommit())
	return finishRecord(dst, start)
}

// appendRemovedRecord appends one removed record for group to dst.
func appendRemovedRecord(dst []byte, group uint64) []byte {
	dst, start := appendRecordHeader(dst, recRemoved)
	dst = binary.BigEndian.AppendUint64(dst, group)
	return finishRecord(dst, start)
}

// walRecord is one decoded record.
type walRecord struct {
	typ   byte
	group uint64
	ents  []*pb.Entry   // recEntries
	hs    *pb.HardState // recHardState
}

// decodeRecord decodes the record at the start of b and returns it with its size in bytes.
// It never reads past b; any inconsistency is errBadRecord. Entry data aliases b.
func decodeRecord(b []byte) (walRecord, int, error) {
	if len(b) < walRecordHeader+1 {
		return walRecord{}, 0, fmt.Errorf("%w: %d bytes left, header needs %d", errBadRecord, len(b), walRecordHeader+1)
	}
	n := binary.BigEndian.Uint32(b)
	if n < 1 || n > walRecordBytesMax || int64(n) > int64(len(b)-walRecordHeader) {
		return walRecord{}, 0, fmt.Errorf("%w: body length %d with %d bytes left", errBadRecord, n, len(b)-walRecordHeader)
	}
	body := b[walRecordHeader : walRecordHeader+int(n)]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(b[4:]) {
		return walRecord{}, 0, fmt.Errorf("%w: CRC mismatch", errBadRecord)
	}
	r, err := decodeBody(body)
	if err != nil {
		return walRecord{}, 0, err
	}
	return r, walRecordHeader + int(n), nil
}

func decodeBody(body []byte) (walRecord, error) {
	r := walRecord{typ: body[0]}
	p := body[1:]
	switch r.typ {
	case recRemoved:
		if len(p) != 8 {
			return r, fmt.Errorf("%w: removed payload of %d bytes", errBadRecord, len(p))
		}
		r.group = binary.BigEndian.Uint64(p)
		return r, nil
	case recHardState:
		if len(p) != 32 {
			return r, fmt.Errorf("%w: hardstate payload of %d bytes", errBadRecord, len(p))
		}
		r.group = binary.BigEndian.Uint64(p)
		r.hs = &pb.HardState{
			Term:   new(binary.BigEndian.Uint64(p[8:])),
			Vote:   new(binary.BigEndian.Uint64(p[16:])),
			Commit: new(binary.BigEndian.Uint64(p[24:])),
		}
		return r, nil
	case recEntries:
		if len(p) < 12 {
			return r, fmt.Errorf("%w: entries payload of %d bytes", errBadRecord, len(p))
		}
		r.group = binary.BigEndian.Uint64(p)
		count := binary.BigEndian.Uint32(p[8:])
		p = p[12:]
		if uint64(count) > uint64(len(p)/entryHeaderBytes) {
			return r, fmt.Errorf("%w: %d entries in %d bytes", errBadRecord, count, len(p))
		}
		r.ents = make([]*pb.Entry, 0, count)
		var prev uint64
		for i := uint32(0); i < count; i++ {
			if len(p) < entryHeaderBytes {
				return r, fmt.Errorf("%w: entry %d truncated", errBadRecord, i)
			}
			term, index := binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
			typ := pb.EntryType(p[16])
			dl := binary.BigEndian.Uint32(p[17:])
			p = p[entryHeaderBytes:]
			if int64(dl) > int64(len(p)) || typ > pb.EntryConfChangeV2 || (i > 0 && index != prev+1) {
				return r, fmt.Errorf("%w: entry %d malformed", errBadRecord, i)
			}
			prev = index
			e := &pb.Entry{Term: new(term), Index: new(index), Type: typ.Enum()}
			if dl > 0 {
				e.Data = p[:dl:dl]
			}
			p = p[dl:]
			r.ents = append(r.ents, e)
		}
		if len(p) != 0 {
			return r, fmt.Errorf("%w: %d bytes after the entries", errBadRecord, len(p))
		}
		return r, nil
	default:
		return r, fmt.Errorf("%w: unknown type %d", errBadRecord, r.typ)
	}
}
