package amqp

// Stream filtering with RabbitMQ 3.13's arguments. A publisher tags a message with the header
// x-stream-filter-value (a string); a Kafka producer does the same with a record header of that
// name. A consumer passes x-stream-filter (a string or an array of strings) and optionally
// x-stream-match-unfiltered (bool, default false): it then gets exactly the records whose
// filter value is one of its values, plus, with match-unfiltered, the records that have none.
//
// RabbitMQ filters per chunk with a Bloom filter, so its consumers must filter again on their
// side; yard reads every record anyway to build the delivery, so it filters each record
// exactly and clients need no second pass. Filtered-out records consume no prefetch credit.

import (
	"errors"
	"fmt"

	"github.com/yardmq/yard/internal/stream"
)

const streamFilterValueHeader = "x-stream-filter-value"

// streamFilter is a consumer's filter; the nil filter passes everything.
type streamFilter struct {
	values          map[string]struct{}
	matchUnfiltered bool
}

var errStreamFilterArg = errors.New("invalid arg 'x-stream-filter': must be a string or an array of strings")

// parseStreamFilter reads a consumer's x-stream-filter and x-stream-match-unfiltered.
func parseStreamFilter(args map[string]any) (*streamFilter, error) {
	raw, ok := args["x-stream-filter"]
	if !ok {
		if v, ok := args["x-stream-match-unfiltered"]; ok {
			if _, isBool := v.(bool); !isBool {
				return nil, fmt.Errorf("invalid arg 'x-stream-match-unfiltered': %v (must be a boolean)", v)
			}
		}
		return nil, nil
	}
	f := &streamFilter{values: map[string]struct{}{}}
	add := func(v any) bool {
		switch v := v.(type) {
		case string:
			f.values[v] = struct{}{}
		case []byte:
			f.values[string(v)] = struct{}{}
		default:
			return false
		}
		return true
	}
	if list, isList := raw.([]any); isList {
		if len(list) == 0 {
			return nil, errStreamFilterArg
		}
		for _, v := range list {
			if !add(v) {
				return nil, errStreamFilterArg
			}
		}
	} else if !add(raw) {
		return nil, errStreamFilterArg
	}
	if v, ok := args["x-stream-match-unfiltered"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return nil, fmt.Errorf("invalid arg 'x-stream-match-unfiltered': %v (must be a boolean)", v)
		}
		f.matchUnfiltered = b
	}
	return f, nil
}

// match reports whether the record goes to the consumer.
func (f *streamFilter) match(r *stream.Record) bool {
	if f == nil {
		return true
	}
	for _, h := range r.Headers {
		if string(h.Key) == streamFilterValueHeader {
			_, ok := f.values[string(h.Value)]
			return ok
		}
	}
	return f.matchUnfiltered
}
