// Package log is yard's storage engine: a segmented, append-only log of record
// batches in the Kafka RecordBatch v2 layout (work in progress).
package log

import (
	"context"
	"errors"
)

// Sentinel errors, matched with errors.Is.
var (
	ErrOffsetOutOfRange = errors.New("offset out of range")
	ErrCorruptBatch     = errors.New("corrupt record batch")
	ErrClosed           = errors.New("log closed")
	errNotImplemented   = errors.New("not implemented yet")
)

// Log is one partition's log.
type Log struct{ ch chan struct{} }

// AppendResult describes what an append wrote.
type AppendResult struct {
	BaseOffset, LastOffset int64
	Batches                int
	Bytes                  int
}

// Range is a byte range of a segment file.
type Range struct {
	File File
	Pos  int64
	Len  int64
}

// ReadResult holds ranges of segment files; call Release when done.
type ReadResult struct {
	Ranges []Range
	Bytes  int64
}

// Release lets retention close the files of the ranges.
func (r *ReadResult) Release() {}

// AppendTo copies the bytes of the ranges into dst.
func (r *ReadResult) AppendTo(dst []byte) ([]byte, error) { return dst, errNotImplemented }

func Open(dir string, opts Options) (*Log, error) { return &Log{ch: make(chan struct{})}, nil }
func (l *Log) SetOptions(opts Options)            {}
func (l *Log) AppendNoWait(b []byte) (AppendResult, error) {
	return AppendResult{}, errNotImplemented
}
func (l *Log) WaitDurable(ctx context.Context, offset int64) error { return errNotImplemented }
func (l *Log) Append(b []byte) (AppendResult, error)               { return AppendResult{}, errNotImplemented }
func (l *Log) Read(offset int64, maxBytes int) (*ReadResult, error) {
	return nil, errNotImplemented
}
func (l *Log) StartOffset() int64                         { return 0 }
func (l *Log) EndOffset() int64                           { return 0 }
func (l *Log) HighWatermark() int64                       { return 0 }
func (l *Log) Changed() <-chan struct{}                   { return l.ch }
func (l *Log) OffsetForTimestamp(ts int64) (int64, error) { return -1, errNotImplemented }
func (l *Log) MaxTimestamp() (ts int64, offset int64)     { return -1, -1 }
func (l *Log) DeleteRecordsBefore(offset int64) error     { return errNotImplemented }
func (l *Log) TruncateTo(offset int64) error              { return errNotImplemented }
func (l *Log) EnforceRetention() error                    { return errNotImplemented }
func (l *Log) Size() int64                                { return 0 }
func (l *Log) Sync() error                                { return errNotImplemented }
func (l *Log) Close() error                               { return nil }
func (l *Log) Delete() error                              { return errNotImplemented }
