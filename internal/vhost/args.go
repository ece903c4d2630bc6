package vhost

// The queue arguments yard knows, in one list: which queue types interpret each, how a
// classic or quorum declaration checks it, and which topic config a stream's becomes. The
// queue engine (internal/queue) interprets classic and quorum queues' arguments; stream
// arguments configure the topic (stream.go). An argument the list does not name is kept and
// ignored, as RabbitMQ does.

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/stream"
)

// queueArg is one known queue argument.
type queueArg struct {
	name                  string
	classic, quorum, strm bool              // the queue types that interpret it
	check                 func(v any) error // a classic or quorum declaration's check; nil accepts anything
	topicConfig           string            // stream queues: the topic config it sets
	toTopic               func(v any) (string, error)
}

// queueArgs is the list. The order is the order checks run in, so that a declaration with
// several bad arguments always hears about the same one.
var queueArgs = []queueArg{
	{name: "x-queue-type", classic: true, quorum: true, strm: true}, // checkQueueType
	{name: "x-message-ttl", classic: true, quorum: true, check: nonNegative("x-message-ttl")},
	{name: "x-max-length", classic: true, quorum: true, check: nonNegative("x-max-length")},
	{name: "x-max-length-bytes", classic: true, quorum: true, strm: true, check: nonNegative("x-max-length-bytes"),
		topicConfig: "retention.bytes", toTopic: streamInt("x-max-length-bytes", 0, "a non-negative integer")},
	{name: "x-delivery-limit", classic: true, quorum: true, check: nonNegative("x-delivery-limit")},
	{name: "x-max-priority", classic: true, check: nonNegative("x-max-priority")},
	{name: "x-expires", classic: true, quorum: true, check: positive("x-expires")},
	{name: "x-overflow", classic: true, quorum: true, check: overflow},
	{name: "x-dead-letter-exchange", classic: true, quorum: true},
	{name: "x-dead-letter-routing-key", classic: true, quorum: true},
	{name: "x-single-active-consumer", classic: true, quorum: true},
	{name: "x-queue-mode", classic: true},
	{name: "x-queue-version", classic: true},
	{name: "x-stream-max-segment-size-bytes", strm: true,
		topicConfig: "segment.bytes", toTopic: streamInt("x-stream-max-segment-size-bytes", 1, "a positive integer")},
	{name: "x-max-age", strm: true, topicConfig: "retention.ms", toTopic: maxAgeMs},
	{name: "x-stream-partitions", strm: true}, // streamPartitionsArg
}

// validateArgs checks a classic or quorum declaration's arguments.
func validateArgs(args map[string]any) error {
	for _, a := range queueArgs {
		if v, ok := args[a.name]; ok && a.check != nil {
			if err := a.check(v); err != nil {
				return err
			}
		}
	}
	return nil
}

func isString(v any) bool { _, ok := v.(string); return ok }

// nonNegative and positive read numbers as the queue engine does (queue.ArgInt).
func nonNegative(name string) func(any) error {
	return func(v any) error {
		if queue.ArgInt(v) < 0 || isString(v) {
			return errors.New("invalid arg '" + name + "': must be a non-negative integer")
		}
		return nil
	}
}

func positive(name string) func(any) error {
	return func(v any) error {
		if queue.ArgInt(v) < 1 || isString(v) {
			return errors.New("invalid arg '" + name + "': must be a positive integer")
		}
		return nil
	}
}

func overflow(v any) error {
	switch v {
	case queue.OverflowDropHead, queue.OverflowRejectPublish, queue.OverflowRejectPublishDLX:
		return nil
	}
	return errors.New("invalid arg 'x-overflow': must be drop-head, reject-publish or reject-publish-dlx")
}

// streamTopicConfigs maps a stream's arguments to its topic's configs: x-max-length-bytes
// to retention.bytes, x-max-age ("7D", "12h", "30m", "20s"; Y and M are 365 and 30 days) to
// retention.ms, x-stream-max-segment-size-bytes to segment.bytes. Without them the topic gets
// Kafka's defaults (7 days of retention).
func streamTopicConfigs(args map[string]any) (map[string]string, error) {
	cfg := map[string]string{}
	for _, a := range queueArgs {
		v, ok := args[a.name]
		if !ok || a.toTopic == nil {
			continue
		}
		s, err := a.toTopic(v)
		if err != nil {
			return nil, err
		}
		cfg[a.topicConfig] = s
	}
	return cfg, nil
}

func streamInt(name string, least int, want string) func(any) (string, error) {
	return func(v any) (string, error) {
		n, ok := IntArg(v)
		if !ok || n < least {
			return "", errors.New("invalid arg '" + name + "': must be " + want)
		}
		return strconv.Itoa(n), nil
	}
}

func maxAgeMs(v any) (string, error) {
	ms, err := parseMaxAge(v)
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(ms, 10), nil
}

func parseMaxAge(v any) (int64, error) {
	bad := fmt.Errorf("invalid arg 'x-max-age': %v (want a number and a unit of Y, M, D, h, m or s, e.g. 7D)", v)
	str, ok := v.(string)
	if !ok || len(str) < 2 {
		return 0, bad
	}
	n, err := strconv.ParseInt(str[:len(str)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, bad
	}
	unit := map[byte]int64{'Y': 365 * 86400e3, 'M': 30 * 86400e3, 'D': 86400e3, 'h': 3600e3, 'm': 60e3, 's': 1e3}[str[len(str)-1]]
	if unit == 0 {
		return 0, bad
	}
	return n * unit, nil
}

// streamPartitionsArg is x-stream-partitions: how many partitions a stream declared over AMQP
// gets (default 1).
func streamPartitionsArg(args map[string]any) (int32, bool, error) {
	v, ok := args["x-stream-partitions"]
	if !ok {
		return 1, false, nil
	}
	n, ok := IntArg(v)
	if !ok || n < 1 || n > stream.MaxPartitionsPerTopic {
		return 0, false, fmt.Errorf("invalid arg 'x-stream-partitions': %v (must be an integer from 1 to %d)", v, stream.MaxPartitionsPerTopic)
	}
	return int32(n), true, nil
}

// IntArg reads an integer argument of any integer type (not a float, not a string).
func IntArg(v any) (int, bool) {
	switch v := v.(type) {
	case int8:
		return int(v), true
	case uint8:
		return int(v), true
	case int16:
		return int(v), true
	case uint16:
		return int(v), true
	case int32:
		return int(v), true
	case uint32:
		return int(v), true
	case int64:
		return int(v), true
	case int:
		return v, true
	}
	return 0, false
}
