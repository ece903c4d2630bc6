package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/log"
)

// Defaults (Kafka's).
const (
	// DefaultMaxTimeout is transaction.max.timeout.ms.
	DefaultMaxTimeout = 15 * time.Minute
	// DefaultAbortCheckInterval is transaction.abort.timed.out.transaction.cleanup.interval.ms.
	DefaultAbortCheckInterval = 10 * time.Second
	// DefaultIDExpiration is transactional.id.expiration.ms.
	DefaultIDExpiration = 7 * 24 * time.Hour
	// MaxTransactionVersion is the highest transaction.version (KIP-890) served, and the
	// level a broker finalizes by default, as Kafka 4 does for a new cluster.
	MaxTransactionVersion int16 = 2
)

// Partitions is what the coordinator needs of the partitions: whether one exists, and
// writing a marker to it (durably).
type Partitions interface {
	Exists(tp TopicPartition) bool
	WriteMarker(ctx context.Context, tp TopicPartition, pid int64, epoch int16, coordinatorEpoch int32, commit bool) error
}

// Offsets commits a transaction's offsets for a group when it commits.
type Offsets interface {
	CommitTxnOffsets(ctx context.Context, group string, offsets map[TopicPartition]Offset) error
}

// OffsetsLog is implemented by an Offsets that keeps transactional offsets in a log as Kafka
// does in __consumer_offsets: the offsets go there as the producer's transactional records
// when sent (WriteTxnOffsets, called with the transaction's lock held, after they are held
// here durably), and every group of the transaction gets its marker there when it ends
// (CompleteTxnOffsets, commit or abort, instead of CommitTxnOffsets).
type OffsetsLog interface {
	WriteTxnOffsets(ctx context.Context, group string, pid int64, epoch int16, offsets map[TopicPartition]Offset) error
	CompleteTxnOffsets(ctx context.Context, group string, pid int64, epoch int16, coordinatorEpoch int32, commit bool, offsets map[TopicPartition]Offset) error
}

// Config configures a Coordinator.
type Config struct {
	Dir        string      // the state log's directory
	LogOptions log.Options // sync policy, file cache, file system of the state log
	Partitions Partitions
	Offsets    Offsets // nil: transactions cannot commit offsets
	// AllocateProducerID hands out a producer ID never used before.
	AllocateProducerID func() (int64, error)
	CoordinatorEpoch   int32
	MaxTimeout         time.Duration // transaction.max.timeout.ms
	AbortCheckInterval time.Duration
	IDExpiration       time.Duration
	// TransactionVersion is the transaction.version feature level finalized (ApiVersions
	// tells clients): 2 turns on KIP-890 part 2 for the request versions that carry it; 0
	// or 1 keep every request at version 1's rules.
	TransactionVersion int16
	Logger             *slog.Logger
	Now                func() time.Time
}

// Coordinator is the transaction coordinator.
//
// Locks: a meta's mu is held for the whole of an operation on that transactional ID
// (including the durable state-log write and marker writes); logMu orders state-log writes
// and is taken inside a meta's mu, never the other way; mu guards the maps only.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	logMu   sync.Mutex
	sl      stateStore
	durable map[string][]byte // last value written per ID, in log order (for compaction)

	mu    sync.Mutex
	byID  map[string]*meta
	byPID map[int64]*meta

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// Open replays the state log, completes transactions that were preparing to commit or abort,
// and starts the timeout loop.
func Open(cfg Config) (*Coordinator, error) {
	return openStore(cfg, nil)
}

// openStore is Open over store (nil: the state log in cfg.Dir).
func openStore(cfg Config, store stateStore) (*Coordinator, error) {
	if cfg.Partitions == nil || cfg.AllocateProducerID == nil {
		return nil, errors.New("cannot open transaction coordinator: no partitions or producer IDs")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = DefaultMaxTimeout
	}
	if cfg.AbortCheckInterval <= 0 {
		cfg.AbortCheckInterval = DefaultAbortCheckInterval
	}
	if cfg.IDExpiration <= 0 {
		cfg.IDExpiration = DefaultIDExpiration
	}
	if cfg.TransactionVersion < 0 || cfg.TransactionVersion > MaxTransactionVersion {
		return nil, fmt.Errorf("cannot open transaction coordinator: transaction.version %d is not in 0-%d", cfg.TransactionVersion, MaxTransactionVersion)
	}
	sl := store
	if sl == nil {
		var err error
		if sl, err = openStateLog(cfg.Dir, cfg.LogOptions, cfg.Now, cfg.Logger); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coordinator{cfg: cfg, log: cfg.Logger, sl: sl, durable: map[string][]byte{},
		byID: map[string]*meta{}, byPID: map[int64]*meta{}, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	err := sl.replay(func(id string, value []byte) error {
		if value == nil {
			delete(c.byID, id)
			delete(c.durable, id)
			return nil
		}
		m, err := decodeState(id, value)
		if err != nil {
			return err
		}
		c.byID[id] = m
		c.durable[id] = append([]byte(nil), value...)
		return nil
	})
	if err != nil {
		cancel()
		sl.close()
		return nil, fmt.Errorf("cannot open transaction coordinator: %w", err)
	}
	inFlight := 0
	for _, m := range c.byID {
		c.byPID[m.pid] = m
		if m.state == PrepareCommit || m.state == PrepareAbort {
			m.mu.Lock()
			if err := c.complete(m); err != nil {
				c.log.Warn("cannot complete transaction; will retry", "transactional_id", m.id, "err", err)
			}
			m.mu.Unlock()
			inFlight++
		}
	}
	c.log.Info("transaction state loaded", "transactional_ids", len(c.byID), "completed", inFlight)
	go c.loop()
	return c, nil
}

// Close stops the coordinator. Transactions stay as they are in the state log.
func (c *Coordinator) Close() error {
	c.cancel()
	<-c.done
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.sl.close()
}

func (c *Coordinator) nowMs() int64 { return c.cfg.Now().UnixMilli() }

// TransactionVersion is the transaction.version feature level finalized (Config).
func (c *Coordinator) TransactionVersion() int16 { return c.cfg.TransactionVersion }

// v2 reports whether a request whose version carries KIP-890 part 2 gets its rules.
func (c *Coordinator) v2(requestV2 bool) bool { return requestV2 && c.cfg.TransactionVersion >= 2 }

// lockMeta returns id's meta locked, creating it if asked; nil if there is none.
func (c *Coordinator) lockMeta(id string, create bool) *meta {
	for {
		c.mu.Lock()
		m := c.byID[id]
		if m == nil && create {
			m = newMeta(id)
			c.byID[id] = m
		}
		c.mu.Unlock()
		if m == nil {
			return nil
		}
		m.mu.Lock()
		if !m.removed {
			return m
		}
		m.mu.Unlock()
	}
}

// persist makes m's state durable. m.mu held.
func (c *Coordinator) persist(m *meta) error {
	m.updateMs = c.nowMs()
	v, err := encodeState(m)
	if err != nil {
		return fmt.Errorf("cannot encode transaction state: %w", err)
	}
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if _, err := c.sl.write(c.ctx, []stateRecord{{m.id, v}}); err != nil {
		return fmt.Errorf("%w (%w)", err, ErrCoordinatorUnavailable)
	}
	c.durable[m.id] = v
	return nil
}

// bump gives m its next epoch (a new producer ID when the epoch is exhausted). m.mu held.
func (c *Coordinator) bump(m *meta) error {
	m.lastPID, m.lastEpoch = m.pid, m.epoch
	if m.epoch < math.MaxInt16-1 {
		m.epoch++
		return nil
	}
	pid, err := c.cfg.AllocateProducerID()
	if err != nil {
		return fmt.Errorf("cannot allocate a producer ID: %w (%w)", err, ErrCoordinatorUnavailable)
	}
	c.mu.Lock()
	delete(c.byPID, m.pid)
	c.byPID[pid] = m
	c.mu.Unlock()
	m.pid, m.epoch = pid, 0
	return nil
}

// bumpToEnd bumps m's epoch to end its transaction with markers at the new epoch (a fenced
// abort, or any end under transaction version 2). If the bump had to allocate a new producer
// ID, the markers name the producer ID that wrote the records, at the epoch past its last
// (which no producer can hold: the bump happens one short of the maximum). m.mu held.
func (c *Coordinator) bumpToEnd(m *meta) error {
	if err := c.bump(m); err != nil {
		return err
	}
	if m.pid != m.lastPID {
		m.markerPID, m.markerEpoch = m.lastPID, m.lastEpoch+1
	}
	return nil
}

// markerProducer is the producer ID and epoch the markers of m's transaction carry. m.mu held.
func (m *meta) markerProducer() (int64, int16) {
	if m.markerPID >= 0 {
		return m.markerPID, m.markerEpoch
	}
	return m.pid, m.epoch
}

// complete writes the markers of a transaction in PrepareCommit or PrepareAbort, commits its
// offsets if it commits, and records it complete. m.mu held. On error the transaction stays
// prepared and the loop retries.
func (c *Coordinator) complete(m *meta) error {
	commit := m.state == PrepareCommit
	pid, epoch := m.markerProducer()
	for _, tp := range m.sortedPartitions() {
		if !c.cfg.Partitions.Exists(tp) {
			continue // deleted since: nothing to mark
		}
		if err := c.cfg.Partitions.WriteMarker(c.ctx, tp, pid, epoch, c.cfg.CoordinatorEpoch, commit); err != nil {
			return err
		}
	}
	if ol, ok := c.cfg.Offsets.(OffsetsLog); ok {
		groups := make([]string, 0, len(m.groups))
		for g := range m.groups {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			if err := ol.CompleteTxnOffsets(c.ctx, g, pid, epoch, c.cfg.CoordinatorEpoch, commit, m.offsets[g]); err != nil {
				return fmt.Errorf("cannot complete offsets of group %s: %w", g, err)
			}
		}
	} else if commit && c.cfg.Offsets != nil {
		groups := make([]string, 0, len(m.offsets))
		for g := range m.offsets {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			if err := c.cfg.Offsets.CommitTxnOffsets(c.ctx, g, m.offsets[g]); err != nil {
				return fmt.Errorf("cannot commit offsets of group %s: %w", g, err)
			}
		}
	}
	prev, prevMarkerPID, prevMarkerEpoch := m.state, m.markerPID, m.markerEpoch
	m.state = CompleteAbort
	if commit {
		m.state = CompleteCommit
	}
	partitions, groups, offsets := m.partitions, m.groups, m.offsets
	m.clear()
	m.markerPID, m.markerEpoch = -1, -1
	if err := c.persist(m); err != nil {
		// Markers again next time (harmless): the transaction stays as it was.
		m.state, m.markerPID, m.markerEpoch = prev, prevMarkerPID, prevMarkerEpoch
		m.partitions, m.groups, m.offsets = partitions, groups, offsets
		return err
	}
	return nil
}

// abort aborts m's ongoing transaction, first bumping the epoch if fence (timeouts and a new
// producer instance), which fences the old producer on every partition. m.mu held.
func (c *Coordinator) abort(m *meta, fence bool) error {
	if fence {
		if err := c.bumpToEnd(m); err != nil {
			return err
		}
	}
	m.state = PrepareAbort
	if err := c.persist(m); err != nil {
		return err
	}
	return c.complete(m)
}

// checkProducer checks that a request comes from the producer that owns the transactional
// ID now. m.mu held.
func checkProducer(m *meta, pid int64, epoch int16) error {
	if m.pid < 0 || m.pid != pid {
		if pid == m.lastPID && m.lastPID >= 0 {
			return ErrProducerFenced
		}
		return ErrInvalidProducerIDMapping
	}
	if epoch != m.epoch {
		return ErrProducerFenced
	}
	return nil
}

// InitProducerID answers InitProducerId with a transactional ID: the producer ID and its
// new epoch. reqPID/reqEpoch are -1 but for a producer recovering from an error (KIP-360),
// which keeps its producer ID with a bumped epoch if it still owns the ID.
func (c *Coordinator) InitProducerID(id string, timeoutMs int32, reqPID int64, reqEpoch int16) (int64, int16, error) {
	if id == "" || len(id) > maxTransactionalID {
		return -1, -1, ErrInvalidTransactionalID
	}
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > c.cfg.MaxTimeout {
		return -1, -1, fmt.Errorf("%w: %d ms (transaction.max.timeout.ms is %d)", ErrInvalidTimeout, timeoutMs, c.cfg.MaxTimeout.Milliseconds())
	}
	m := c.lockMeta(id, true)
	defer m.mu.Unlock()
	if m.state == PrepareCommit || m.state == PrepareAbort {
		if err := c.complete(m); err != nil {
			c.log.Warn("cannot complete transaction", "transactional_id", id, "err", err)
			return -1, -1, ErrConcurrentTransactions
		}
	}
	if m.pid < 0 {
		pid, err := c.cfg.AllocateProducerID()
		if err != nil {
			c.dropNew(m)
			return -1, -1, fmt.Errorf("cannot allocate a producer ID: %w (%w)", err, ErrCoordinatorUnavailable)
		}
		m.pid, m.epoch, m.timeoutMs, m.state = pid, 0, timeoutMs, Empty
		if err := c.persist(m); err != nil {
			c.dropNew(m)
			return -1, -1, err
		}
		c.mu.Lock()
		c.byPID[pid] = m
		c.mu.Unlock()
		return pid, 0, nil
	}
	if reqPID >= 0 {
		switch {
		case reqPID == m.pid && reqEpoch == m.epoch:
			// bump below
		case reqPID == m.lastPID && reqEpoch == m.lastEpoch && m.state != Ongoing:
			return m.pid, m.epoch, nil // a retry of the bump we already made
		default:
			return -1, -1, ErrProducerFenced
		}
	}
	if m.state == Ongoing {
		// A new instance of the producer (or one recovering): abort what the old one left,
		// fencing it.
		if err := c.abort(m, true); err != nil {
			c.log.Warn("cannot abort transaction of a fenced producer", "transactional_id", id, "err", err)
			return -1, -1, ErrConcurrentTransactions
		}
	}
	if err := c.bump(m); err != nil {
		return -1, -1, err
	}
	m.timeoutMs, m.state = timeoutMs, Empty
	if err := c.persist(m); err != nil {
		return -1, -1, err
	}
	return m.pid, m.epoch, nil
}

// dropNew forgets a meta created by a failed InitProducerId. m.mu held.
func (c *Coordinator) dropNew(m *meta) {
	m.removed = true
	c.mu.Lock()
	if c.byID[m.id] == m {
		delete(c.byID, m.id)
	}
	c.mu.Unlock()
}

// begin checks a request that adds to a transaction and makes it ongoing. m.mu held.
func (c *Coordinator) begin(m *meta, pid int64, epoch int16) error {
	if err := checkProducer(m, pid, epoch); err != nil {
		return err
	}
	switch m.state {
	case PrepareCommit, PrepareAbort:
		if err := c.complete(m); err != nil {
			return ErrConcurrentTransactions
		}
	case Dead, PrepareEpochFence:
		return ErrInvalidTxnState
	}
	if m.state != Ongoing {
		m.state, m.startMs = Ongoing, c.nowMs()
		m.clear()
	}
	return nil
}

// AddPartitions is AddPartitionsToTxn: per-partition errors (nil: added). With verifyOnly
// (v4+ from brokers) nothing is added: each partition is checked to be in the transaction.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, tps []TopicPartition, verifyOnly bool) (map[TopicPartition]error, error) {
	m := c.lockMeta(id, false)
	if m == nil {
		return nil, ErrInvalidProducerIDMapping
	}
	defer m.mu.Unlock()
	out := make(map[TopicPartition]error, len(tps))
	if verifyOnly {
		if err := checkProducer(m, pid, epoch); err != nil {
			return nil, err
		}
		for _, tp := range tps {
			if _, ok := m.partitions[tp]; ok && m.state == Ongoing {
				out[tp] = nil
			} else {
				out[tp] = ErrInvalidTxnState
			}
		}
		return out, nil
	}
	unknown := false
	mk, _ := c.cfg.Partitions.(interface{ Markable(TopicPartition) error })
	for _, tp := range tps {
		if !c.cfg.Partitions.Exists(tp) {
			out[tp] = ErrUnknownTopicOrPartition
			unknown = true
		} else if mk != nil {
			if err := mk.Markable(tp); err != nil {
				out[tp] = err
				unknown = true
			}
		}
	}
	if unknown {
		for _, tp := range tps {
			if out[tp] == nil {
				out[tp] = ErrNotAttempted
			}
		}
		return out, nil
	}
	wasOngoing := m.state == Ongoing
	if err := c.begin(m, pid, epoch); err != nil {
		return nil, err
	}
	changed := !wasOngoing
	for _, tp := range tps {
		out[tp] = nil
		if _, ok := m.partitions[tp]; !ok {
			m.partitions[tp] = struct{}{}
			changed = true
		}
	}
	if changed {
		if err := c.persist(m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AddOffsets is AddOffsetsToTxn: the transaction will commit offsets for group.
func (c *Coordinator) AddOffsets(id string, pid int64, epoch int16, group string) error {
	m := c.lockMeta(id, false)
	if m == nil {
		return ErrInvalidProducerIDMapping
	}
	defer m.mu.Unlock()
	wasOngoing := m.state == Ongoing
	if err := c.begin(m, pid, epoch); err != nil {
		return err
	}
	if _, ok := m.groups[group]; ok && wasOngoing {
		return nil
	}
	m.groups[group] = struct{}{}
	return c.persist(m)
}

// CommitOffsets is TxnOffsetCommit: the offsets are held (durably) until the transaction
// ends, committed to the group if it commits. With v2 (TxnOffsetCommit v5+ under transaction
// version 2) a group not yet in the transaction is added to it, beginning the transaction if
// none is open (KIP-890's implicit AddOffsetsToTxn).
func (c *Coordinator) CommitOffsets(id string, pid int64, epoch int16, group string, offsets map[TopicPartition]Offset, v2 bool) (map[TopicPartition]error, error) {
	v2 = c.v2(v2)
	m := c.lockMeta(id, false)
	if m == nil {
		return nil, ErrInvalidProducerIDMapping
	}
	defer m.mu.Unlock()
	if err := checkProducer(m, pid, epoch); err != nil {
		return nil, err
	}
	if _, ok := m.groups[group]; !ok || m.state != Ongoing {
		if !v2 {
			return nil, ErrInvalidTxnState
		}
		if err := c.begin(m, pid, epoch); err != nil {
			return nil, err
		}
		m.groups[group] = struct{}{}
	}
	out := make(map[TopicPartition]error, len(offsets))
	for tp, o := range offsets {
		if !c.cfg.Partitions.Exists(tp) {
			out[tp] = ErrUnknownTopicOrPartition
			continue
		}
		out[tp] = nil
		m.addOffset(group, tp, o)
	}
	if err := c.persist(m); err != nil {
		return nil, err
	}
	if ol, ok := c.cfg.Offsets.(OffsetsLog); ok {
		sent := make(map[TopicPartition]Offset, len(out))
		for tp, err := range out {
			if err == nil {
				sent[tp] = offsets[tp]
			}
		}
		if err := ol.WriteTxnOffsets(c.ctx, group, pid, epoch, sent); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// End is EndTxn: commit or abort the ongoing transaction. It returns once the outcome is
// durable (the markers are normally written by then too; if one cannot be written, the
// transaction stays prepared and is completed later). With v2 (EndTxn v5+ under transaction
// version 2) the epoch is bumped first and the producer's new ID and epoch are returned;
// otherwise they are -1.
func (c *Coordinator) End(id string, pid int64, epoch int16, commit, v2 bool) (int64, int16, error) {
	v2 = c.v2(v2)
	m := c.lockMeta(id, false)
	if m == nil {
		return -1, -1, ErrInvalidProducerIDMapping
	}
	defer m.mu.Unlock()
	if v2 {
		return c.endV2(m, pid, epoch, commit)
	}
	if err := checkProducer(m, pid, epoch); err != nil {
		// A producer whose transaction timed out (the epoch was bumped when it was aborted)
		// may still abort it.
		if pid == m.lastPID && epoch == m.lastEpoch && m.state == CompleteAbort && !commit {
			return -1, -1, nil
		}
		return -1, -1, err
	}
	switch m.state {
	case Ongoing:
		return -1, -1, c.prepareAndComplete(m, commit)
	case PrepareCommit, PrepareAbort:
		if (m.state == PrepareCommit) == commit {
			return -1, -1, ErrConcurrentTransactions
		}
		return -1, -1, ErrInvalidTxnState
	case CompleteCommit:
		if commit {
			return -1, -1, nil // a retry
		}
	case CompleteAbort:
		if !commit {
			return -1, -1, nil
		}
	}
	return -1, -1, endStateError(m.state, commit)
}

func endStateError(st State, commit bool) error {
	return fmt.Errorf("%w: cannot %s a transaction in state %s", ErrInvalidTxnState, map[bool]string{true: "commit", false: "abort"}[commit], st)
}

// prepareAndComplete records the outcome of m's ongoing transaction and completes it. m.mu
// held.
func (c *Coordinator) prepareAndComplete(m *meta, commit bool) error {
	m.state = PrepareAbort
	if commit {
		m.state = PrepareCommit
	}
	if err := c.persist(m); err != nil {
		m.state = Ongoing
		return err
	}
	if err := c.complete(m); err != nil {
		c.log.Warn("cannot complete transaction; will retry", "transactional_id", m.id, "err", err)
	}
	return nil
}

// endV2 is End under transaction version 2. m.mu held.
func (c *Coordinator) endV2(m *meta, pid int64, epoch int16, commit bool) (int64, int16, error) {
	if err := checkProducer(m, pid, epoch); err != nil {
		if pid != m.lastPID || epoch != m.lastEpoch || m.lastPID < 0 {
			return -1, -1, err
		}
		// The producer's epoch before the last bump: a retry of the EndTxn that made it, or
		// the end of a transaction that timed out (its abort bumped the epoch).
		switch {
		case m.state == PrepareCommit || m.state == PrepareAbort:
			return -1, -1, ErrConcurrentTransactions
		case m.state == CompleteCommit && commit, m.state == CompleteAbort && !commit:
			return m.pid, m.epoch, nil
		case m.state == CompleteCommit || m.state == CompleteAbort:
			return -1, -1, endStateError(m.state, commit)
		}
		return -1, -1, err
	}
	switch m.state {
	case Ongoing:
		prevPID, prevEpoch, prevLastPID, prevLastEpoch := m.pid, m.epoch, m.lastPID, m.lastEpoch
		if err := c.bumpToEnd(m); err != nil {
			return -1, -1, err
		}
		if err := c.prepareAndComplete(m, commit); err != nil {
			c.unbump(m, prevPID, prevEpoch, prevLastPID, prevLastEpoch)
			return -1, -1, err
		}
		return m.pid, m.epoch, nil
	case PrepareCommit, PrepareAbort:
		return -1, -1, ErrConcurrentTransactions
	case Empty, CompleteCommit, CompleteAbort:
		if commit {
			if m.state == CompleteCommit {
				return m.pid, m.epoch, nil // nothing since the last commit
			}
			return -1, -1, endStateError(m.state, commit)
		}
		// Aborting when nothing is open is allowed under version 2 (a producer that failed
		// before it wrote anything); it bumps the epoch like any end.
		prevPID, prevEpoch, prevLastPID, prevLastEpoch := m.pid, m.epoch, m.lastPID, m.lastEpoch
		if err := c.bump(m); err != nil {
			return -1, -1, err
		}
		prevState := m.state
		m.state = CompleteAbort
		if err := c.persist(m); err != nil {
			m.state = prevState
			c.unbump(m, prevPID, prevEpoch, prevLastPID, prevLastEpoch)
			return -1, -1, err
		}
		return m.pid, m.epoch, nil
	}
	return -1, -1, endStateError(m.state, commit)
}

// unbump undoes a bump whose outcome could not be recorded. m.mu held.
func (c *Coordinator) unbump(m *meta, pid int64, epoch int16, lastPID int64, lastEpoch int16) {
	if m.pid != pid {
		c.mu.Lock()
		delete(c.byPID, m.pid)
		c.byPID[pid] = m
		c.mu.Unlock()
	}
	m.pid, m.epoch, m.lastPID, m.lastEpoch = pid, epoch, lastPID, lastEpoch
	m.markerPID, m.markerEpoch = -1, -1
}

// Produce runs appendFn (the append of a transactional batch to tp) if the producer's
// transaction is ongoing and holds tp; the check and the append are one step with respect to
// the transaction's end. With v2 (Produce v12+ under transaction version 2) a partition not
// yet in the transaction is added to it, beginning the transaction if none is open (KIP-890's
// implicit AddPartitionsToTxn).
func (c *Coordinator) Produce(pid int64, epoch int16, tp TopicPartition, v2 bool, appendFn func() error) error {
	v2 = c.v2(v2)
	c.mu.Lock()
	m := c.byPID[pid]
	c.mu.Unlock()
	if m == nil {
		return fmt.Errorf("%w: producer %d has no transaction", ErrInvalidTxnState, pid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.removed || m.pid != pid:
		return fmt.Errorf("%w: producer %d has no transaction", ErrInvalidTxnState, pid)
	case epoch != m.epoch:
		return fmt.Errorf("%w: producer %d epoch %d, current epoch %d", ErrInvalidProducerEpoch, pid, epoch, m.epoch)
	}
	if _, ok := m.partitions[tp]; ok && m.state == Ongoing {
		return appendFn()
	}
	if !v2 {
		if m.state != Ongoing {
			return fmt.Errorf("%w: transaction of producer %d is %s", ErrInvalidTxnState, pid, m.state)
		}
		return fmt.Errorf("%w: %s-%d was not added to the transaction", ErrInvalidTxnState, tp.Topic, tp.Partition)
	}
	if err := c.begin(m, pid, epoch); err != nil {
		return err
	}
	m.partitions[tp] = struct{}{}
	if err := c.persist(m); err != nil {
		delete(m.partitions, tp)
		return err
	}
	return appendFn()
}

// PendingOffsets is the partitions for which an open transaction holds offsets of group
// (OffsetFetch's RequireStable answers them UNSTABLE_OFFSET_COMMIT). A transaction being
// completed is waited for.
func (c *Coordinator) PendingOffsets(group string) map[TopicPartition]bool {
	c.mu.Lock()
	metas := make([]*meta, 0, len(c.byID))
	for _, m := range c.byID {
		metas = append(metas, m)
	}
	c.mu.Unlock()
	var out map[TopicPartition]bool
	for _, m := range metas {
		m.mu.Lock()
		for tp := range m.offsets[group] {
			if out == nil {
				out = map[TopicPartition]bool{}
			}
			out[tp] = true
		}
		m.mu.Unlock()
	}
	return out
}

// Description is one transactional ID as DescribeTransactions shows it.
type Description struct {
	ID         string
	State      State
	PID        int64
	Epoch      int16
	TimeoutMs  int32
	StartMs    int64 // -1 when no transaction is open
	Partitions []TopicPartition
}

// Describe describes id; ErrTransactionalIDNotFound if it is unknown.
func (c *Coordinator) Describe(id string) (Description, error) {
	m := c.lockMeta(id, false)
	if m == nil {
		return Description{}, ErrTransactionalIDNotFound
	}
	defer m.mu.Unlock()
	if m.pid < 0 {
		return Description{}, ErrTransactionalIDNotFound
	}
	d := Description{ID: id, State: m.state, PID: m.pid, Epoch: m.epoch, TimeoutMs: m.timeoutMs, StartMs: -1, Partitions: m.sortedPartitions()}
	if m.state == Ongoing || m.state == PrepareCommit || m.state == PrepareAbort {
		d.StartMs = m.startMs
	}
	return d, nil
}

// List describes every transactional ID whose state is in states (all if empty), whose
// producer ID is in pids (all if empty) and, if minDurationMs >= 0, whose transaction has
// been open at least that long.
func (c *Coordinator) List(states []State, pids []int64, minDurationMs int64) []Description {
	c.mu.Lock()
	ids := make([]string, 0, len(c.byID))
	for id := range c.byID {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	sort.Strings(ids)
	now := c.nowMs()
	var out []Description
	for _, id := range ids {
		d, err := c.Describe(id)
		if err != nil {
			continue
		}
		if len(states) > 0 && !contains(states, d.State) || len(pids) > 0 && !contains(pids, d.PID) {
			continue
		}
		if minDurationMs >= 0 && (d.StartMs < 0 || now-d.StartMs < minDurationMs) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// loop aborts timed-out transactions, retries completions, expires idle IDs and compacts the
// state log.
func (c *Coordinator) loop() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.AbortCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.Maintain()
	}
}

// Maintain runs one round of the loop's work now.
func (c *Coordinator) Maintain() {
	c.mu.Lock()
	metas := make([]*meta, 0, len(c.byID))
	for _, m := range c.byID {
		metas = append(metas, m)
	}
	c.mu.Unlock()
	now := c.nowMs()
	for _, m := range metas {
		m.mu.Lock()
		switch {
		case m.removed:
		case m.state == Ongoing && now-m.startMs > int64(m.timeoutMs):
			c.log.Info("aborting a transaction that timed out", "transactional_id", m.id, "producer_id", m.pid, "timeout_ms", m.timeoutMs)
			if err := c.abort(m, true); err != nil {
				c.log.Warn("cannot abort transaction; will retry", "transactional_id", m.id, "err", err)
			}
		case m.state == PrepareCommit || m.state == PrepareAbort:
			if err := c.complete(m); err != nil {
				c.log.Warn("cannot complete transaction; will retry", "transactional_id", m.id, "err", err)
			}
		case (m.state == Empty || m.state == CompleteCommit || m.state == CompleteAbort) &&
			now-m.updateMs > c.cfg.IDExpiration.Milliseconds():
			c.expire(m)
		}
		m.mu.Unlock()
	}
	c.compact()
}

// expire forgets an idle transactional ID (transactional.id.expiration.ms). m.mu held.
func (c *Coordinator) expire(m *meta) {
	c.logMu.Lock()
	_, err := c.sl.write(c.ctx, []stateRecord{{m.id, nil}})
	if err == nil {
		delete(c.durable, m.id)
	}
	c.logMu.Unlock()
	if err != nil {
		c.log.Warn("cannot expire transactional ID", "transactional_id", m.id, "err", err)
		return
	}
	m.removed = true
	c.mu.Lock()
	delete(c.byID, m.id)
	if c.byPID[m.pid] == m {
		delete(c.byPID, m.pid)
	}
	c.mu.Unlock()
}

func (c *Coordinator) compact() {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	live := make([]stateRecord, 0, len(c.durable))
	for id, v := range c.durable {
		live = append(live, stateRecord{id, v})
	}
	sort.Slice(live, func(i, j int) bool { return live[i].id < live[j].id })
	if err := c.sl.maybeCompact(c.ctx, live); err != nil {
		c.log.Warn("cannot compact transaction state log", "err", err)
	}
}

// hasProducer says whether pid is the producer ID of one of this coordinator's
// transactional IDs.
func (c *Coordinator) hasProducer(pid int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPID[pid] != nil
}
