package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/yardmq/yard/internal/atomicfile"
)

// A group's latest snapshot lives in snap/%020d.snap (the group id), replaced atomically
// (internal/atomicfile) whenever the group takes or receives a newer one. Its bytes:
//
//	0  4 bytes  magic "ysnp"
//	4  uint8    format version, snapVersion (1)
//	5  uint32   CRC-32C (Castagnoli) of everything after this field, big-endian
//	9  ...      raftpb.Snapshot in protobuf encoding (metadata: index, term, ConfState; data:
//	            the state machine's own bytes)
//
// The file is written before the WAL records that follow it, so recovery may find a snapshot
// newer than the last HardState's commit index; it then raises the commit to the snapshot
// (a snapshot only ever holds committed state).
const (
	snapMagic       = "ysnp"
	snapVersion     = 1
	snapHeaderBytes = 9
	snapDirName     = "snap"
)

var errBadSnapshot = errors.New("invalid snapshot file")

func encodeSnapshot(s *pb.Snapshot) ([]byte, error) {
	body, err := proto.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("cannot encode snapshot: %w", err)
	}
	b := make([]byte, snapHeaderBytes, snapHeaderBytes+len(body))
	copy(b, snapMagic)
	b[4] = snapVersion
	binary.BigEndian.PutUint32(b[5:], crc32.Checksum(body, crcTable))
	return append(b, body...), nil
}

func decodeSnapshot(b []byte) (*pb.Snapshot, error) {
	if len(b) < snapHeaderBytes || string(b[:4]) != snapMagic || b[4] != snapVersion {
		return nil, fmt.Errorf("%w: bad header", errBadSnapshot)
	}
	body := b[snapHeaderBytes:]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(b[5:]) {
		return nil, fmt.Errorf("%w: CRC mismatch", errBadSnapshot)
	}
	s := &pb.Snapshot{}
	if err := proto.Unmarshal(body, s); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadSnapshot, err)
	}
	if s.GetMetadata().GetIndex() == 0 {
		return nil, fmt.Errorf("%w: no index", errBadSnapshot)
	}
	return pb.EnsureSnapshot(s), nil
}

func snapPath(dir string, group uint64) string {
	return filepath.Join(dir, snapDirName, fmt.Sprintf("%020d.snap", group))
}

func writeSnapshotFile(dir string, group uint64, s *pb.Snapshot) error {
	b, err := encodeSnapshot(s)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(snapPath(dir, group), b, 0o644); err != nil {
		return fmt.Errorf("cannot write snapshot of group %d: %w", group, err)
	}
	return nil
}

// readSnapshotFiles loads every group's snapshot from dir/snap.
func readSnapshotFiles(dir string) (map[uint64]*pb.Snapshot, error) {
	sd := filepath.Join(dir, snapDirName)
	if err := os.MkdirAll(sd, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create snapshot directory: %w", err)
	}
	des, err := os.ReadDir(sd)
	if err != nil {
		return nil, fmt.Errorf("cannot list snapshots: %w", err)
	}
	snaps := make(map[uint64]*pb.Snapshot)
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".snap")
		if !ok {
			if strings.HasSuffix(de.Name(), ".tmp") { // an interrupted atomicfile.Write
				os.Remove(filepath.Join(sd, de.Name()))
			}
			continue
		}
		g, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cannot load snapshots: foreign file %s", de.Name())
		}
		b, err := os.ReadFile(filepath.Join(sd, de.Name()))
		if err != nil {
			return nil, fmt.Errorf("cannot read snapshot: %w", err)
		}
		s, err := decodeSnapshot(b)
		if err != nil {
			return nil, fmt.Errorf("cannot load snapshot of group %d: %w", g, err)
		}
		snaps[g] = s
	}
	return snaps, nil
}
