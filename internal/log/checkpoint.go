package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/yardmq/yard/internal/recordbatch"
)

// Small metadata files of a log directory. Each is written atomically (temp file,
// fsync, rename, fsync directory: writeFileAtomic) and ends with a CRC-32C of the
// bytes before it, so a damaged file is detected rather than trusted.
const (
	startOffsetFile   = "log-start-offset.checkpoint"
	recoveryPointFile = "recovery-point.checkpoint"
	cleanShutdownFile = "clean-shutdown"
	checkpointVersion = 1
)

func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }

// log-start-offset.checkpoint, 17 bytes:
//
//	offset  size  field
//	0       4     magic "YLSO"
//	4       1     version (1)
//	5       8     log start offset, int64 big-endian
//	13      4     CRC-32C of bytes 0..13, big-endian
func encodeStartOffset(start int64) []byte { return encodeOffsetCheckpoint("YLSO", start) }

func decodeStartOffset(b []byte) (int64, error) { return decodeOffsetCheckpoint(b, "YLSO") }

// encodeOffsetCheckpoint encodes one offset in the layout above with the given magic
// (cleaner-offset.checkpoint, the end of the last cleaned range, uses "YCLN").
func encodeOffsetCheckpoint(magic string, v int64) []byte {
	b := append([]byte(magic), checkpointVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(v))
	return binary.BigEndian.AppendUint32(b, recordbatch.CRC32C(b))
}

func decodeOffsetCheckpoint(b []byte, magic string) (int64, error) {
	fields, err := checkFrame(b, magic, 8)
	if err != nil {
		return 0, err
	}
	v := int64(binary.BigEndian.Uint64(fields))
	if v < 0 {
		return 0, fmt.Errorf("negative offset %d", v)
	}
	return v, nil
}

// recovery-point.checkpoint, 69 bytes: everything before (segment, position) —
// segment data and index entries — is durable and was valid when written.
//
//	offset  size  field
//	0       4     magic "YRCP"
//	4       1     version (1)
//	5       8     segment base offset, int64
//	13      8     position in that segment's .log, int64
//	21      8     offset after the last batch before position, int64
//	29      4     offset-index entries of the segment below position, uint32
//	33      4     time-index entries of the segment below position, uint32
//	37      8     the segment's largest timestamp below position, int64 (-1 none)
//	45      8     the log's largest timestamp below the point, int64 (-1 none)
//	53      8     last offset of the batch holding it, int64
//	61      4     CRC-32C of bytes 0..61
//
// All integers big-endian.
const recoveryPointFields = 56

type recoveryPoint struct {
	segBase, pos, offset int64
	nIdx, nTidx          int
	segMaxTS             int64
	maxTS, maxTSOf       int64
}

func encodeRecoveryPoint(dp durablePoint) []byte {
	b := append(make([]byte, 0, 4+1+recoveryPointFields+4), "YRCP"...)
	b = append(b, checkpointVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(dp.seg.base))
	b = binary.BigEndian.AppendUint64(b, uint64(dp.pos))
	b = binary.BigEndian.AppendUint64(b, uint64(dp.offset))
	b = binary.BigEndian.AppendUint32(b, uint32(dp.nIdx))
	b = binary.BigEndian.AppendUint32(b, uint32(dp.nTidx))
	b = binary.BigEndian.AppendUint64(b, uint64(dp.segMaxTS))
	b = binary.BigEndian.AppendUint64(b, uint64(dp.maxTS))
	b = binary.BigEndian.AppendUint64(b, uint64(dp.maxTSOf))
	return binary.BigEndian.AppendUint32(b, recordbatch.CRC32C(b))
}

func decodeRecoveryPoint(b []byte) (recoveryPoint, error) {
	f, err := checkFrame(b, "YRCP", recoveryPointFields)
	if err != nil {
		return recoveryPoint{}, err
	}
	u64 := func(i int) int64 { return int64(binary.BigEndian.Uint64(f[i:])) }
	rp := recoveryPoint{
		segBase: u64(0), pos: u64(8), offset: u64(16),
		nIdx:     int(binary.BigEndian.Uint32(f[24:])),
		nTidx:    int(binary.BigEndian.Uint32(f[28:])),
		segMaxTS: u64(32), maxTS: u64(40), maxTSOf: u64(48),
	}
	if rp.segBase < 0 || rp.pos < 0 || rp.offset < rp.segBase || rp.pos > segmentBytesLimit {
		return recoveryPoint{}, fmt.Errorf("inconsistent fields %+v", rp)
	}
	return rp, nil
}

// clean-shutdown, 57 bytes, written by Close after everything is fsynced and
// removed (durably) by Open before anything is written:
//
//	offset  size  field
//	0       4     magic "YCLN"
//	4       1     version (1)
//	5       8     active segment base offset, int64
//	13      8     active segment size in bytes, int64
//	21      8     log end offset, int64
//	29      8     active segment's largest timestamp, int64 (-1 none)
//	37      8     log's largest timestamp, int64 (-1 none)
//	45      8     last offset of the batch holding it, int64
//	53      4     CRC-32C of bytes 0..53
//
// All integers big-endian.
const cleanShutdownFields = 48

type cleanShutdown struct {
	segBase, segSize, end int64
	segMaxTS              int64
	maxTS, maxTSOf        int64
}

func encodeCleanShutdown(c cleanShutdown) []byte {
	b := append(make([]byte, 0, 4+1+cleanShutdownFields+4), "YCLN"...)
	b = append(b, checkpointVersion)
	for _, v := range []int64{c.segBase, c.segSize, c.end, c.segMaxTS, c.maxTS, c.maxTSOf} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return binary.BigEndian.AppendUint32(b, recordbatch.CRC32C(b))
}

func decodeCleanShutdown(b []byte) (cleanShutdown, error) {
	f, err := checkFrame(b, "YCLN", cleanShutdownFields)
	if err != nil {
		return cleanShutdown{}, err
	}
	u64 := func(i int) int64 { return int64(binary.BigEndian.Uint64(f[i:])) }
	c := cleanShutdown{segBase: u64(0), segSize: u64(8), end: u64(16), segMaxTS: u64(24), maxTS: u64(32), maxTSOf: u64(40)}
	if c.segBase < 0 || c.segSize < 0 || c.end < c.segBase {
		return cleanShutdown{}, fmt.Errorf("inconsistent fields %+v", c)
	}
	return c, nil
}

// checkFrame verifies magic, version, length and CRC and returns the fields.
func checkFrame(b []byte, magic string, fieldsLen int) ([]byte, error) {
	want := 4 + 1 + fieldsLen + 4
	if len(b) != want {
		return nil, fmt.Errorf("length %d, want %d", len(b), want)
	}
	if string(b[:4]) != magic {
		return nil, fmt.Errorf("bad magic %q", b[:4])
	}
	if b[4] != checkpointVersion {
		return nil, fmt.Errorf("unsupported version %d", b[4])
	}
	body := b[:want-4]
	if recordbatch.CRC32C(body) != binary.BigEndian.Uint32(b[want-4:]) {
		return nil, errors.New("checksum mismatch")
	}
	return b[5 : want-4], nil
}
