package route

import (
	"fmt"
	"math"
	"reflect"
	"strings"
)

// topicMatch matches routing key words against binding pattern words: '*' is exactly one
// word, '#' zero or more. It backtracks only over '#', remembering the last one, which keeps
// it linear in practice and never exponential.
func topicMatch(pattern, key []string) bool {
	p, k := 0, 0
	star, mark := -1, 0
	for k < len(key) {
		switch {
		case p < len(pattern) && pattern[p] == "#":
			star, mark = p, k
			p++
		case p < len(pattern) && (pattern[p] == "*" || pattern[p] == key[k]):
			p++
			k++
		case star >= 0:
			p = star + 1
			mark++
			k = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == "#" {
		p++
	}
	return p == len(pattern)
}

// headersMatch applies a headers-exchange binding: x-match "all" (the default) needs every
// binding argument present with an equal value, "any" needs one; arguments starting with "x-"
// are ignored unless x-match is "all-with-x" or "any-with-x". A void binding value matches
// the header's presence alone.
func headersMatch(args, headers map[string]any) bool {
	mode, _ := args["x-match"].(string)
	matchAny := mode == "any" || mode == "any-with-x"
	withX := strings.HasSuffix(mode, "-with-x")
	for k, want := range args {
		if k == "x-match" || (!withX && strings.HasPrefix(k, "x-")) {
			continue
		}
		got, ok := headers[k]
		ok = ok && (want == nil || valueEqual(want, got))
		if matchAny && ok {
			return true
		}
		if !matchAny && !ok {
			return false
		}
	}
	return !matchAny
}

// valueEqual compares field values across integer and float widths, as clients pick different
// widths for the same number.
func valueEqual(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	if sa, ok := a.(string); ok {
		switch sb := b.(type) {
		case string:
			return sa == sb
		case []byte:
			return sa == string(sb)
		}
		return false
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int8:
		return float64(v), true
	case uint8:
		return float64(v), true
	case int16:
		return float64(v), true
	case uint16:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint32:
		return float64(v), true
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float32:
		return float64(v), true
	case float64:
		if math.IsNaN(v) {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// argsEqual compares argument tables the way RabbitMQ compares binding and declaration
// arguments: same keys, equal values.
func argsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !valueEqual(va, vb) && fmt.Sprint(va) != fmt.Sprint(vb) {
			return false
		}
	}
	return true
}

// ArgsEqual is argsEqual for callers checking declaration equivalence.
func ArgsEqual(a, b map[string]any) bool { return argsEqual(a, b) }
