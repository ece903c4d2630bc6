package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/yardmq/yard/internal/atomicfile"
	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// Producer-state snapshots bound the work of rebuilding idempotent-producer state: every
// ProducerSnapshotInterval (and on Close) each partition whose log moved writes its state with
// the log end offset X it describes. On open the state is loaded from the snapshot and the
// log's batch headers are scanned from X on. A snapshot whose X is beyond the log end (the
// crash took a torn tail that the snapshot had seen), or that is damaged, is ignored and the
// whole log is scanned: a snapshot is only ever a shortcut, the log is the truth.
//
// File <data-dir>/producer-snapshots/<topic>-<partition>.json (UTF-8 JSON, one object):
//
//	{"format": 1, "crc32c": <uint32>, "state": {"end_offset": N, "producers": [
//	  {"id": PID, "epoch": E, "last_seen_ms": T,
//	   "batches": [[firstSeq, lastSeq, firstOffset, lastOffset, appendTimeMs], ...]}, ...],
//	  "ongoing": [[PID, firstOffset], ...], "aborted": [[PID, firstOffset, markerOffset], ...]}}
//
// (ongoing and aborted: the transaction state of txn.go; absent in snapshots of older
// versions, which then describe a log without transactions.)
//
// crc32c (Castagnoli) covers the compact bytes of "state"; a file that fails it is ignored.

const snapshotFormat = 1

type snapshotState struct {
	EndOffset int64              `json:"end_offset"`
	Producers []snapshotProducer `json:"producers"`
	Ongoing   [][2]int64         `json:"ongoing,omitempty"`
	Aborted   [][3]int64         `json:"aborted,omitempty"`
}

// txnSnapshot is the transaction part of a decoded snapshot.
type txnSnapshot struct {
	ongoing map[int64]int64
	aborted []AbortedTxn
}

type snapshotProducer struct {
	ID         int64      `json:"id"`
	Epoch      int16      `json:"epoch"`
	LastSeenMs int64      `json:"last_seen_ms"`
	Batches    [][5]int64 `json:"batches"`
}

type snapshotFile struct {
	Format int             `json:"format"`
	CRC32C uint32          `json:"crc32c"`
	State  json.RawMessage `json:"state"`
}

func (m *Manager) snapshotPath(topic string, p int32) string {
	return m.layout.ProducerSnapshot(topic, p)
}

// encodeSnapshot renders a partition's producer state as of endOffset. p.mu must be held.
func (p *Partition) encodeSnapshot(endOffset int64) ([]byte, error) {
	st := snapshotState{EndOffset: endOffset, Producers: make([]snapshotProducer, 0, len(p.producers))}
	for id, s := range p.producers {
		sp := snapshotProducer{ID: id, Epoch: s.epoch, LastSeenMs: s.lastSeenMs}
		for _, e := range s.batches {
			sp.Batches = append(sp.Batches, [5]int64{int64(e.firstSeq), int64(e.lastSeq), e.firstOffset, e.lastOffset, e.appendTime})
		}
		st.Producers = append(st.Producers, sp)
	}
	sort.Slice(st.Producers, func(i, j int) bool { return st.Producers[i].ID < st.Producers[j].ID })
	for id, first := range p.ongoing {
		st.Ongoing = append(st.Ongoing, [2]int64{id, first})
	}
	sort.Slice(st.Ongoing, func(i, j int) bool { return st.Ongoing[i][0] < st.Ongoing[j][0] })
	for _, a := range p.aborted {
		st.Aborted = append(st.Aborted, [3]int64{a.ProducerID, a.FirstOffset, a.LastOffset})
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("cannot encode producer snapshot: %w", err)
	}
	return json.Marshal(snapshotFile{Format: snapshotFormat, CRC32C: rb.CRC32C(raw), State: raw})
}

// decodeSnapshot parses and checks a snapshot file into producer states.
func decodeSnapshot(data []byte) (int64, map[int64]*producerState, txnSnapshot, error) {
	end, producers, st, err := decodeSnapshotState(data)
	if err != nil {
		return 0, nil, txnSnapshot{}, err
	}
	txs := txnSnapshot{ongoing: make(map[int64]int64, len(st.Ongoing))}
	for _, o := range st.Ongoing {
		if o[0] < 0 || o[1] < 0 || o[1] >= end {
			return 0, nil, txnSnapshot{}, fmt.Errorf("producer snapshot: bad open transaction of producer %d", o[0])
		}
		txs.ongoing[o[0]] = o[1]
	}
	prev := int64(-1)
	for _, a := range st.Aborted {
		if a[0] < 0 || a[1] < 0 || a[2] < a[1] || a[2] >= end || a[2] <= prev {
			return 0, nil, txnSnapshot{}, fmt.Errorf("producer snapshot: bad aborted transaction of producer %d", a[0])
		}
		prev = a[2]
		txs.aborted = append(txs.aborted, AbortedTxn{ProducerID: a[0], FirstOffset: a[1], LastOffset: a[2]})
	}
	return end, producers, txs, nil
}

func decodeSnapshotState(data []byte) (int64, map[int64]*producerState, *snapshotState, error) {
	var f snapshotFile
	if err := json.Unmarshal(data, &f); err != nil {
		return 0, nil, nil, err
	}
	if f.Format != snapshotFormat {
		return 0, nil, nil, fmt.Errorf("producer snapshot format %d, want %d", f.Format, snapshotFormat)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, f.State); err != nil {
		return 0, nil, nil, err
	}
	if rb.CRC32C(compact.Bytes()) != f.CRC32C {
		return 0, nil, nil, errors.New("producer snapshot checksum mismatch")
	}
	var st snapshotState
	if err := json.Unmarshal(compact.Bytes(), &st); err != nil {
		return 0, nil, nil, err
	}
	out := make(map[int64]*producerState, len(st.Producers))
	for _, sp := range st.Producers {
		if sp.ID < 0 || len(sp.Batches) > producerBatchWindow {
			return 0, nil, nil, fmt.Errorf("producer snapshot: bad producer %d", sp.ID)
		}
		s := &producerState{epoch: sp.Epoch, lastSeenMs: sp.LastSeenMs, batches: make([]seqEntry, 0, producerBatchWindow)}
		for _, b := range sp.Batches {
			if b[0] < 0 || b[0] > 0x7fffffff || b[1] < 0 || b[1] > 0x7fffffff || b[2] < 0 || b[3] < b[2] || b[3] >= st.EndOffset {
				return 0, nil, nil, fmt.Errorf("producer snapshot: bad batch of producer %d", sp.ID)
			}
			s.batches = append(s.batches, seqEntry{firstSeq: int32(b[0]), lastSeq: int32(b[1]), firstOffset: b[2], lastOffset: b[3], appendTime: b[4]})
		}
		out[sp.ID] = s
	}
	return st.EndOffset, out, &st, nil
}

// loadSnapshot installs the partition's snapshot if it can describe a prefix of the log as
// opened, and returns the offset the scan must start from (0 without a usable snapshot).
func (p *Partition) loadSnapshot() int64 {
	m := p.Topic.m
	data, err := os.ReadFile(m.snapshotPath(p.Topic.Name, p.Index))
	if err != nil {
		return 0
	}
	end, producers, txs, err := decodeSnapshot(data)
	if err != nil {
		m.log.Warn("ignoring producer snapshot", "topic", p.Topic.Name, "partition", p.Index, "err", err)
		return 0
	}
	if end > p.log.EndOffset() {
		m.log.Info("ignoring producer snapshot beyond the recovered log end", "topic", p.Topic.Name,
			"partition", p.Index, "snapshot_end", end, "log_end", p.log.EndOffset())
		return 0
	}
	p.producers = producers
	p.ongoing, p.aborted = txs.ongoing, txs.aborted
	p.snapshotEnd = end // the file on disk, which the cleaner's marker removal is bounded by
	return end
}

// writeSnapshots saves the producer state of every partition whose log end moved since its
// last snapshot. Failures are logged: the next open scans further back instead.
func (m *Manager) writeSnapshots() {
	if err := datadir.MkdirAll(m.layout.ProducerSnapshots()); err != nil {
		m.log.Warn("cannot write producer snapshots", "err", err)
		return
	}
	for _, t := range m.Topics() {
		for _, p := range t.Partitions() {
			p.mu.Lock()
			end := p.log.EndOffset()
			if end == p.snapshotEnd {
				p.mu.Unlock()
				continue
			}
			data, err := p.encodeSnapshot(end)
			p.mu.Unlock()
			if err == nil {
				err = atomicfile.Write(m.snapshotPath(t.Name, p.Index), data, datadir.FilePerm)
			}
			if err != nil {
				m.log.Warn("cannot write producer snapshot", "topic", t.Name, "partition", p.Index, "err", err)
				continue
			}
			p.mu.Lock()
			p.snapshotEnd = end
			p.mu.Unlock()
		}
	}
}

// removeOrphanSnapshots deletes snapshots of partitions the catalog does not know and of
// which no directory is left (a snapshot is a cache of its log: with the log gone it only
// risks being taken for a new partition's). The snapshot of a directory kept because nothing
// describes it is kept with it.
func (m *Manager) removeOrphanSnapshots(st catalog.State) error {
	dir := m.layout.ProducerSnapshots()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot list producer snapshots: %w", err)
	}
	for _, e := range entries {
		if topic, p, ok := datadir.ParseProducerSnapshotName(e.Name()); ok {
			if knows(st, datadir.PartitionName(topic, p)) {
				continue
			}
			if _, err := os.Lstat(m.partitionDir(topic, p)); err == nil {
				continue
			}
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("cannot remove stale producer snapshot: %w", err)
		}
	}
	return nil
}
