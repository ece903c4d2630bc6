package vhost

import (
	"strconv"
	"testing"
)

func TestStreamArgumentsBecomeTopicConfigs(t *testing.T) {
	t.Parallel()
	cfg, err := streamTopicConfigs(map[string]any{"x-max-length-bytes": int64(1 << 30), "x-max-age": "7D", "x-stream-max-segment-size-bytes": int32(1 << 20)})
	if err != nil || cfg["retention.bytes"] != "1073741824" || cfg["retention.ms"] != "604800000" || cfg["segment.bytes"] != "1048576" {
		t.Fatalf("%v %v", cfg, err)
	}
	for _, bad := range []any{"7", "7W", int32(7), "-1D"} {
		if _, err := streamTopicConfigs(map[string]any{"x-max-age": bad}); err == nil {
			t.Fatalf("x-max-age %v accepted", bad)
		}
	}
}

func TestValidateArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args map[string]any
		want string // "" accepts; else the argument and RabbitMQ's reason
	}{
		{map[string]any{"x-message-ttl": int32(0), "x-expires": int64(1), "x-overflow": "reject-publish", "x-whatever": "kept"}, ""},
		{map[string]any{"x-max-length": float64(3)}, `x-max-length: "expected integer, got double"`},
		{map[string]any{"x-message-ttl": int32(-1)}, "x-message-ttl: {value_negative,-1}"},
		{map[string]any{"x-message-ttl": int64(315_360_000_001)}, "x-message-ttl: {value_too_large,315360000001}"},
		{map[string]any{"x-max-priority": "10"}, `x-max-priority: "expected integer, got longstr"`},
		{map[string]any{"x-expires": int32(0)}, "x-expires: {value_zero,0}"},
		{map[string]any{"x-overflow": "drop-tail"}, "x-overflow: invalid_overflow"},
		{map[string]any{"x-queue-version": int8(3)}, `x-queue-version: "unsupported queue version '3'"`},
		// checks run in RabbitMQ's order
		{map[string]any{"x-expires": int32(0), "x-message-ttl": int32(-1)}, "x-expires: {value_zero,0}"},
	} {
		got := ""
		if e := validateArgs(tc.args); e != nil {
			got = e.name + ": " + e.reason
		}
		if got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.args, got, tc.want)
		}
	}
}

// FuzzCheckExpiration: an expiration is accepted exactly when it is an optionally signed
// decimal integer from 0 to ten years of milliseconds, and nothing else follows.
func FuzzCheckExpiration(f *testing.F) {
	for _, s := range []string{"0", "60000", "-1", "+5", "abc", "1.5", "", "315360000001", "99999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckExpiration(s)
		n, perr := strconv.ParseInt(s, 10, 64)
		want := perr == nil && n >= 0 && n <= maxExpiry
		if (err == nil) != want {
			t.Fatalf("%q: got %v, want accepted=%v", s, err, want)
		}
	})
}
