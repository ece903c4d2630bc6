package stream

import (
	"fmt"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

// Reading the records inside a batch, for the rare questions that need record granularity
// (ListOffsets by timestamp and max timestamp). The write and fetch paths never do this.

// batchRecords calls fn for each record of a whole batch, in order, until fn returns false; the
// records inflate to at most limit bytes.
func batchRecords(batch []byte, limit int, fn func(offsetDelta int32, timestampDelta int64) bool) error {
	h, err := rb.ParseHeader(batch)
	if err != nil {
		return err
	}
	body, err := rb.Body(batch, &h, nil, limit)
	if err != nil {
		return err
	}
	it := rb.NewRecords(body, h.RecordCount)
	var r rb.Record
	for it.Next(&r) {
		if r.OffsetDelta < 0 || r.OffsetDelta > h.LastOffsetDelta {
			return fmt.Errorf("%w: record offset delta %d outside [0, %d]", ErrCorruptBatch, r.OffsetDelta, h.LastOffsetDelta)
		}
		if !fn(r.OffsetDelta, r.TimestampDelta) {
			return nil
		}
	}
	return it.Err()
}
