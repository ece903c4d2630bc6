package kafka

import (
	"strings"
	"testing"
)

func TestParseListeners(t *testing.T) {
	t.Parallel()
	got, err := ParseListeners("127.0.0.1:9092, SSL://:9093,sasl_plaintext://h:9094,SASL_SSL://[::1]:9095")
	if err != nil {
		t.Fatal(err)
	}
	want := []ListenerSpec{
		{"PLAINTEXT", Plaintext, "127.0.0.1:9092"}, {"SSL", SSL, ":9093"},
		{"SASL_PLAINTEXT", SASLPlaintext, "h:9094"}, {"SASL_SSL", SASLSSL, "[::1]:9095"},
	}
	if len(got) != len(want) {
		t.Fatalf("%+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listener %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if l, err := ParseListeners(""); err != nil || len(l) != 0 {
		t.Fatalf("empty: %v %v", l, err)
	}
	for in, msg := range map[string]string{
		"TLS://:1":                  "unknown security protocol",
		"PLAINTEXT://:1,:2":         "appears twice",
		"SSL://nohostport":          "missing port",
		"PLAINTEXT://:1,SSL://:2,x": "missing port",
	} {
		if _, err := ParseListeners(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want an error saying %q", in, err, msg)
		}
	}
}
