package log

import (
	"fmt"
	"log/slog"
	"math"
	"time"
)

// SyncPolicy says when appended data is forced to stable storage.
type SyncPolicy int

const (
	// SyncAlways acknowledges (WaitDurable returns, HighWatermark advances) only after
	// an fsync covering the data; concurrent appenders share one fsync (group commit).
	SyncAlways SyncPolicy = iota
	// SyncInterval fsyncs in the background every Options.SyncInterval.
	SyncInterval
	// SyncNever leaves write-back to the OS; the log fsyncs only on roll and close.
	SyncNever
	// SyncJournal is for a log whose appends are made durable elsewhere, in a Journal
	// (journal.go): the log fsyncs on Sync, roll and close only, WaitDurable does not wait,
	// and readers see offsets below what the owner declared durable with MarkDurable (or
	// what the log's own fsyncs covered). Not a user-facing policy: ParseSyncPolicy refuses it.
	SyncJournal
)

// ParseSyncPolicy parses "always", "interval" or "never".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "always":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "never":
		return SyncNever, nil
	}
	return 0, fmt.Errorf("cannot parse sync policy %q: want always, interval or never", s)
}

// String returns the name ParseSyncPolicy accepts.
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	case SyncJournal:
		return "journal"
	}
	return fmt.Sprintf("SyncPolicy(%d)", int(p))
}

// Defaults applied by Open and SetOptions to zero-valued Options fields.
const (
	DefaultSegmentBytesMax    = 1 << 30
	DefaultSegmentMaxAge      = 7 * 24 * time.Hour
	DefaultIndexIntervalBytes = 4096
	DefaultSyncInterval       = time.Second
	DefaultRetentionMs        = 7 * 24 * 60 * 60 * 1000
	DefaultDeleteRetentionMs  = 24 * 60 * 60 * 1000
	// DefaultMinCleanableDirtyRatio is Kafka's min.cleanable.dirty.ratio default.
	DefaultMinCleanableDirtyRatio = 0.5
	// segmentBytesLimit bounds SegmentBytesMax: index positions are uint32 and the
	// batch length field is int32, so a segment never grows past 2 GiB.
	segmentBytesLimit = math.MaxInt32
)

// Options configures a Log. Zero values mean the defaults; RetentionBytes 0 means
// the default (-1, unlimited) and RetentionMs 0 means the default (7 days): to
// retain nothing use a tiny positive value.
type Options struct {
	SegmentBytesMax    int64         // roll when the active segment would exceed it (default 1 GiB)
	SegmentMaxAge      time.Duration // roll by age (default 7 days)
	IndexIntervalBytes int           // sparse index density (default 4096)
	SyncPolicy         SyncPolicy
	SyncInterval       time.Duration // for SyncInterval (default 1s)
	RetentionMs        int64         // -1 = unlimited (default 7 days)
	RetentionBytes     int64         // -1 = unlimited (default)
	// Compaction (clean.go): Compact is cleanup.policy containing compact; NoDelete is
	// cleanup.policy without delete (retention then deletes nothing, as in Kafka).
	Compact  bool
	NoDelete bool
	// DeleteRetentionMs: how long tombstones (null values) and removable transaction markers
	// outlive the cleaning that first kept them (their delete horizon, clean.go; 0: the
	// default, 1 day; negative: until the next cleaning).
	DeleteRetentionMs int64
	// MinCleanableDirtyRatio: the share of not yet cleaned bytes above which a log is cleaned
	// (0 = Kafka's default 0.5; a negative value means 0, clean whenever anything is dirty).
	MinCleanableDirtyRatio float64
	// MinCompactionLagMs: a segment whose newest record is younger than this is not cleaned.
	MinCompactionLagMs int64
	// MaxCompactionLagMs: a log whose oldest uncleaned record is older than this is cleaned
	// whatever its dirty ratio, and its active segment is rolled once older (0 = unlimited).
	MaxCompactionLagMs int64
	FS                 FS // nil = the real OS file system
	// FileCache bounds the segment files open at once across the logs that share it
	// (the broker passes one to all of its logs); nil = a cache of this log's own with
	// DefaultMaxOpenSegmentFiles.
	FileCache *FileCache
	Now       func() time.Time // nil = time.Now
	Logger    *slog.Logger     // nil = discard
	// SyncObserver is told about every group commit that made data durable (metrics);
	// nil = nobody.
	SyncObserver SyncObserver
}

// SyncObserver receives group-commit measurements: how long the fsync of the active
// segment took and how many records it made durable at once. Called on the syncing
// goroutine after the fsync, outside the log's locks: it must be cheap and never block.
type SyncObserver interface {
	ObserveSync(fsync time.Duration, records int64)
}

func (o Options) withDefaults() Options {
	if o.SegmentBytesMax <= 0 {
		o.SegmentBytesMax = DefaultSegmentBytesMax
	}
	if o.SegmentBytesMax > segmentBytesLimit {
		o.SegmentBytesMax = segmentBytesLimit
	}
	if o.SegmentMaxAge <= 0 {
		o.SegmentMaxAge = DefaultSegmentMaxAge
	}
	if o.IndexIntervalBytes <= 0 {
		o.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.RetentionMs == 0 {
		o.RetentionMs = DefaultRetentionMs
	}
	if o.RetentionBytes == 0 {
		o.RetentionBytes = -1
	}
	if o.DeleteRetentionMs == 0 {
		o.DeleteRetentionMs = DefaultDeleteRetentionMs
	}
	if o.MinCleanableDirtyRatio == 0 {
		o.MinCleanableDirtyRatio = DefaultMinCleanableDirtyRatio
	}
	if o.MinCleanableDirtyRatio < 0 {
		o.MinCleanableDirtyRatio = 0
	}
	if o.MaxCompactionLagMs <= 0 {
		o.MaxCompactionLagMs = math.MaxInt64
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.FileCache == nil {
		o.FileCache = NewFileCache(0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
