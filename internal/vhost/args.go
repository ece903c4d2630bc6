package vhost

// The queue arguments yard knows, in one list: which queue types interpret each, how a
// classic or quorum declaration checks it, and which topic config a stream's becomes. The
// queue engine (internal/queue) interprets classic and quorum queues' arguments; stream
// arguments configure the topic (stream.go). An argument the list does not name is kept and
// ignored, as RabbitMQ does.

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/stream"
)

// queueArg is one known queue argument.
type queueArg struct {
	name                  string
	classic, quorum, strm bool // the queue types that interpret it
	// check is a classic or quorum declaration's check, RabbitMQ's: "" accepts, anything
	// else is the reason RabbitMQ prints after "invalid arg 'x-...' for queue '...' in vhost
	// '...': " (an Erlang term: {value_negative,-1}). nil accepts anything.
	check       func(v any, args map[string]any) string
	topicConfig string // stream queues: the topic config it sets
	toTopic     func(v any) (string, error)
}

// queueArgs is the list, in RabbitMQ's order of checks (rabbit_amqqueue:declare_args), so
// that a declaration with several bad arguments hears about the one RabbitMQ names.
var queueArgs = []queueArg{
	{name: "x-expires", classic: true, quorum: true, check: checkExpires},
	{name: "x-message-ttl", classic: true, quorum: true, check: checkMessageTTL},
	{name: "x-dead-letter-exchange", classic: true, quorum: true, check: checkString},
	{name: "x-dead-letter-routing-key", classic: true, quorum: true, check: checkDLRoutingKey},
	{name: "x-max-length", classic: true, quorum: true, check: checkNonNegInt},
	{name: "x-max-length-bytes", classic: true, quorum: true, strm: true, check: checkNonNegInt,
		topicConfig: "retention.bytes", toTopic: streamInt("x-max-length-bytes", 0, "a non-negative integer")},
	{name: "x-max-priority", classic: true, check: checkMaxPriority},
	{name: "x-overflow", classic: true, quorum: true, check: oneOf(queue.OverflowDropHead, queue.OverflowRejectPublish, queue.OverflowRejectPublishDLX)},
	{name: "x-queue-mode", classic: true, check: checkQueueMode},
	{name: "x-queue-version", classic: true, check: checkQueueVersion},
	{name: "x-single-active-consumer", classic: true, quorum: true, check: checkBool},
	{name: "x-queue-type", classic: true, quorum: true, strm: true}, // checkQueueType
	{name: "x-delivery-limit", classic: true, quorum: true, check: checkNonNegInt},
	{name: "x-stream-max-segment-size-bytes", strm: true,
		topicConfig: "segment.bytes", toTopic: streamInt("x-stream-max-segment-size-bytes", 1, "a positive integer")},
	{name: "x-max-age", strm: true, topicConfig: "retention.ms", toTopic: maxAgeMs},
	{name: "x-stream-partitions", strm: true}, // streamPartitionsArg
}

// argError is an argument a declaration cannot have, and RabbitMQ's reason.
type argError struct{ name, reason string }

// validateArgs checks a classic or quorum declaration's arguments; nil if they are good.
func validateArgs(args map[string]any) *argError {
	for _, a := range queueArgs {
		if v, ok := args[a.name]; ok && a.check != nil {
			if r := a.check(v, args); r != "" {
				return &argError{a.name, r}
			}
		}
	}
	return nil
}

// knownFor reports whether a queue of type typ interprets the argument.
func (a *queueArg) knownFor(typ string) bool {
	switch typ {
	case queueTypeQuorum:
		return a.quorum
	case queueTypeStream:
		return a.strm
	}
	return a.classic
}

// maxExpiry is RabbitMQ's bound on TTLs and x-expires: ten years in milliseconds.
const maxExpiry = 315_360_000_000

// checkInt is RabbitMQ's check_int_arg: an integer of any width, never a float or a string.
func checkInt(v any) string {
	if _, ok := IntArg(v); !ok {
		return `"expected integer, got ` + FieldType(v) + `"`
	}
	return ""
}

func checkNonNegInt(v any, _ map[string]any) string {
	if r := checkInt(v); r != "" {
		return r
	}
	if n, _ := IntArg(v); n < 0 {
		return "{value_negative," + strconv.Itoa(n) + "}"
	}
	return ""
}

// checkExpiry is rabbit_misc:check_expiry, for milliseconds.
func checkExpiry(n int) string {
	switch {
	case n < 0:
		return "{value_negative," + strconv.Itoa(n) + "}"
	case n > maxExpiry:
		return "{value_too_large," + strconv.Itoa(n) + "}"
	}
	return ""
}

func checkExpires(v any, _ map[string]any) string {
	if r := checkInt(v); r != "" {
		return r
	}
	n, _ := IntArg(v)
	if n == 0 {
		return "{value_zero,0}"
	}
	return checkExpiry(n)
}

func checkMessageTTL(v any, _ map[string]any) string {
	if r := checkInt(v); r != "" {
		return r
	}
	n, _ := IntArg(v)
	return checkExpiry(n)
}

func checkMaxPriority(v any, args map[string]any) string {
	if r := checkNonNegInt(v, args); r != "" {
		return r
	}
	if n, _ := IntArg(v); n > 255 {
		return "{max_value_exceeded," + strconv.Itoa(n) + "}"
	}
	return ""
}

func checkString(v any, _ map[string]any) string {
	if _, ok := v.(string); !ok {
		return "{unacceptable_type," + FieldType(v) + "}"
	}
	return ""
}

func checkDLRoutingKey(v any, args map[string]any) string {
	if r := checkString(v, args); r != "" {
		return r
	}
	if _, ok := args["x-dead-letter-exchange"]; !ok {
		return "routing_key_but_no_dlx_defined"
	}
	return ""
}

func checkBool(v any, _ map[string]any) string {
	if _, ok := v.(bool); !ok {
		return "{unacceptable_type," + FieldType(v) + "}"
	}
	return ""
}

func oneOf(values ...string) func(any, map[string]any) string {
	return func(v any, args map[string]any) string {
		if r := checkString(v, args); r != "" {
			return r
		}
		for _, ok := range values {
			if v == ok {
				return ""
			}
		}
		return "invalid_overflow"
	}
}

func checkQueueMode(v any, args map[string]any) string {
	if r := checkString(v, args); r != "" {
		return r
	}
	if s := v.(string); s != "default" && s != "lazy" {
		return `"unsupported queue mode '` + s + `'"`
	}
	return ""
}

func checkQueueVersion(v any, args map[string]any) string {
	if r := checkNonNegInt(v, args); r != "" {
		return r
	}
	if n, _ := IntArg(v); n != 1 && n != 2 {
		return `"unsupported queue version '` + strconv.Itoa(n) + `'"`
	}
	return ""
}

// checkConsumeArgs checks basic.consume's arguments as RabbitMQ does (x-priority: an integer).
func checkConsumeArgs(args map[string]any) *argError {
	if v, ok := args["x-priority"]; ok {
		if r := checkInt(v); r != "" {
			return &argError{"x-priority", r}
		}
	}
	return nil
}

// FieldType is RabbitMQ's name for the AMQP field type a decoded field value has (longstr,
// long, double, ...), as its error texts print it.
func FieldType(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case int8:
		return "byte"
	case uint8:
		return "unsignedbyte"
	case int16:
		return "short"
	case uint16:
		return "unsignedshort"
	case int32:
		return "signedint"
	case uint32:
		return "unsignedint"
	case int64, int:
		return "long"
	case float32:
		return "float"
	case float64:
		return "double"
	case string:
		return "longstr"
	case []byte:
		return "binary"
	case []any:
		return "array"
	case time.Time:
		return "timestamp"
	case map[string]any:
		return "table"
	case nil:
		return "void"
	}
	if t := reflect.TypeOf(v); t.Kind() == reflect.Struct && t.Name() == "Decimal" {
		return "decimal" // the wire codec's type, which the domain does not import
	}
	return fmt.Sprintf("%T", v)
}

// typeClass is rabbit_misc:type_class: integer widths compare alike, and so do float widths,
// but an integer is never a float.
func typeClass(v any) string {
	switch t := FieldType(v); t {
	case "byte", "unsignedbyte", "short", "unsignedshort", "signedint", "unsignedint", "long", "decimal":
		return "int"
	case "float", "double":
		return "float"
	default:
		return t
	}
}

// sameArg is RabbitMQ's equivalence of two argument values: the same type class and equal.
func sameArg(a, b any) bool {
	if typeClass(a) != typeClass(b) {
		return false
	}
	if x, ok := IntArg(a); ok {
		y, _ := IntArg(b)
		return x == y
	}
	return reflect.DeepEqual(normalise(a), normalise(b))
}

func normalise(v any) any {
	switch v := v.(type) {
	case float32:
		return float64(v)
	case []byte:
		return string(v)
	}
	return v
}

// describeArg is how RabbitMQ prints an argument in an equivalence failure.
func describeArg(v any, present bool) string {
	if !present {
		return "none"
	}
	return "the value '" + erlangValue(v) + "' of type '" + FieldType(v) + "'"
}

// erlangValue prints a field value as Erlang's ~s (binaries) or ~p (the rest) would.
func erlangValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case float32:
		return erlangFloat(float64(v))
	case float64:
		return erlangFloat(v)
	}
	if n, ok := IntArg(v); ok {
		return strconv.Itoa(n)
	}
	return fmt.Sprint(v)
}

func erlangFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") { // n: NaN, Inf
		s += ".0"
	}
	return s
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

func isString(v any) bool { _, ok := v.(string); return ok }
