package vhost

import "testing"

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
		want string // "" accepts
	}{
		{map[string]any{"x-message-ttl": int32(0), "x-expires": int64(1), "x-overflow": "reject-publish", "x-whatever": "kept"}, ""},
		{map[string]any{"x-max-length": float64(3)}, ""}, // read as the queue engine reads it
		{map[string]any{"x-message-ttl": int32(-1)}, "invalid arg 'x-message-ttl': must be a non-negative integer"},
		{map[string]any{"x-max-priority": "10"}, "invalid arg 'x-max-priority': must be a non-negative integer"},
		{map[string]any{"x-expires": int32(0)}, "invalid arg 'x-expires': must be a positive integer"},
		{map[string]any{"x-overflow": "drop-tail"}, "invalid arg 'x-overflow': must be drop-head, reject-publish or reject-publish-dlx"},
		// checks run in the list's order
		{map[string]any{"x-expires": int32(0), "x-message-ttl": int32(-1)}, "invalid arg 'x-message-ttl': must be a non-negative integer"},
	} {
		err := validateArgs(tc.args)
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.want {
				t.Errorf("%v: got %q, want %q", tc.args, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%v accepted, want %q", tc.args, tc.want)
		}
	}
}
