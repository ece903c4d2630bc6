package route

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTopicMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, key string
		want         bool
	}{
		{"a.b.c", "a.b.c", true}, {"a.*.c", "a.b.c", true}, {"a.*.c", "a.c", false},
		{"a.#", "a", true}, {"a.#", "a.b.c", true}, {"#", "", true}, {"#", "x.y", true},
		{"#.c", "a.b.c", true}, {"#.c", "a.b.d", false}, {"a.#.c", "a.c", true},
		{"a.#.c", "a.x.y.c", true}, {"a.#.c", "a.x.y.d", false}, {"*", "a.b", false},
		{"*.*", "a.b", true}, {"#.#", "a", true}, {"a.#.#.b", "a.b", true},
		{"*.#", "", true}, {"a", "b", false}, {"#.*.#", "x", true}, {"#.*.#", "", true},
	}
	for _, c := range cases {
		if got := topicMatch(strings.Split(c.pattern, "."), strings.Split(c.key, ".")); got != c.want {
			t.Errorf("%q vs %q: got %v want %v", c.pattern, c.key, got, c.want)
		}
	}
}

func TestHeadersMatch(t *testing.T) {
	t.Parallel()
	h := map[string]any{"format": "pdf", "type": "report", "n": int32(3)}
	cases := []struct {
		args map[string]any
		want bool
	}{
		{map[string]any{"format": "pdf", "type": "report"}, true},
		{map[string]any{"x-match": "all", "format": "pdf", "type": "log"}, false},
		{map[string]any{"x-match": "any", "format": "zip", "type": "report"}, true},
		{map[string]any{"x-match": "any", "format": "zip"}, false},
		{map[string]any{"n": int64(3)}, true},
		{map[string]any{"x-match": "all", "x-other": "ignored", "format": "pdf"}, true},
		{map[string]any{"x-match": "any"}, false},
		{map[string]any{}, true},
		{map[string]any{"missing": nil}, false},
		{map[string]any{"format": nil}, true},
	}
	for i, c := range cases {
		if got := headersMatch(c.args, h); got != c.want {
			t.Errorf("case %d %v: got %v want %v", i, c.args, got, c.want)
		}
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	top := NewTopology()
	q := func(n string) Dest { return Dest{Name: n} }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(top.Bind(Binding{Source: "amq.direct", Dest: q("q1"), Key: "k"}))
	must(top.Bind(Binding{Source: "amq.direct", Dest: q("q1"), Key: "k"})) // idempotent
	must(top.Bind(Binding{Source: "amq.direct", Dest: q("q2"), Key: "k"}))
	must(top.Bind(Binding{Source: "amq.topic", Dest: q("t"), Key: "*.eu.#"}))
	must(top.Bind(Binding{Source: "amq.fanout", Dest: q("f1")}))
	must(top.Bind(Binding{Source: "amq.fanout", Dest: Dest{Exchange: true, Name: "amq.topic"}}))
	must(top.Bind(Binding{Source: "amq.topic", Dest: Dest{Exchange: true, Name: "amq.fanout"}, Key: "#"})) // cycle
	must(top.Bind(Binding{Source: "amq.match", Dest: q("h"), Args: map[string]any{"x-match": "any", "a": "1"}}))
	route := func(ex, key string, hdr map[string]any) []string {
		got, err := top.Route(ex, key, HeaderMap(hdr), nil)
		must(err)
		slices.Sort(got)
		return got
	}
	if got := route("amq.direct", "k", nil); !slices.Equal(got, []string{"q1", "q2"}) {
		t.Fatalf("direct: %v", got)
	}
	if got := route("amq.fanout", "truck.eu.north", nil); !slices.Equal(got, []string{"f1", "t"}) {
		t.Fatalf("fanout+e2e: %v", got)
	}
	if got := route("amq.match", "", map[string]any{"a": "1"}); !slices.Equal(got, []string{"h"}) {
		t.Fatalf("headers: %v", got)
	}
	if got := route("", "anything", nil); !slices.Equal(got, []string{"anything"}) {
		t.Fatalf("default: %v", got)
	}
	if _, err := top.Route("nope", "", nil, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing exchange: %v", err)
	}
	top.RemoveQueue("q1")
	if got := route("amq.direct", "k", nil); !slices.Equal(got, []string{"q2"}) {
		t.Fatalf("after queue removal: %v", got)
	}
	must(top.Unbind(Binding{Source: "amq.direct", Dest: q("q2"), Key: "k"}))
	if got := route("amq.direct", "k", nil); len(got) != 0 {
		t.Fatalf("after unbind: %v", got)
	}
	if err := top.Delete("amq.fanout", true); !errors.Is(err, ErrInUse) {
		t.Fatalf("if-unused: %v", err)
	}
}

func TestAutoDeleteExchange(t *testing.T) {
	t.Parallel()
	top := NewTopology()
	if _, created, err := top.Declare(Exchange{Name: "ad", Type: Fanout, AutoDelete: true}); err != nil || !created {
		t.Fatal(err)
	}
	if _, _, err := top.Declare(Exchange{Name: "bad", Type: "weird"}); !errors.Is(err, ErrUnknownType) {
		t.Fatal(err)
	}
	_ = top.Bind(Binding{Source: "ad", Dest: Dest{Name: "q"}})
	top.RemoveQueue("q")
	if _, ok := top.Lookup("ad"); ok {
		t.Fatal("auto-delete exchange survived losing its last binding")
	}
}

// TestAlternateExchangesAndExtraKeys: an exchange none of whose bindings match hands the
// message to its alternate exchange, recursively, each exchange once; an exchange whose
// binding to another exchange matched does not, even if that one routes nowhere (its own
// alternate does); extra keys (CC, BCC) match like the routing key, in every exchange type.
func TestAlternateExchangesAndExtraKeys(t *testing.T) {
	t.Parallel()
	tp := NewTopology()
	decl := func(name, typ, ae string) {
		var args map[string]any
		if ae != "" {
			args = map[string]any{AlternateExchange: ae}
		}
		if _, _, err := tp.Declare(Exchange{Name: name, Type: typ, Args: args}); err != nil {
			t.Fatal(err)
		}
	}
	bind := func(src string, dest Dest, key string) {
		if err := tp.Bind(Binding{Source: src, Dest: dest, Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	decl("ae", "fanout", "")
	decl("mid", "direct", "ae")
	decl("inner", "direct", "")
	decl("t", "topic", "mid")
	decl("c1", "direct", "c2")
	decl("c2", "direct", "c1")
	bind("ae", Dest{Name: "unrouted"}, "")
	bind("mid", Dest{Name: "mid-q"}, "m")
	bind("t", Dest{Name: "eu"}, "eu.#")
	bind("t", Dest{Name: "us"}, "us.*")
	bind("t", Dest{Exchange: true, Name: "inner"}, "to.inner")
	for _, tc := range []struct {
		ex, key string
		extra   []string
		want    []string
	}{
		{"t", "eu.de", nil, []string{"eu"}},
		{"t", "asia", nil, []string{"unrouted"}}, // t -> mid -> ae
		{"t", "eu.de", []string{"us.ny", "eu.fr"}, []string{"eu", "us"}},
		{"t", "asia", []string{"us.ny"}, []string{"us"}},
		{"t", "to.inner", nil, nil}, // matched a binding to inner: no alternate
		{"mid", "x", []string{"m"}, []string{"mid-q"}},
		{"c1", "x", nil, nil}, // a cycle of alternates ends
		{"", "q1", []string{"q2", "q1"}, []string{"q1", "q2"}},
	} {
		got, err := tp.RouteKeys(tc.ex, tc.key, tc.extra, nil, nil)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s %q %v: got %v, %v; want %v", tc.ex, tc.key, tc.extra, got, err, tc.want)
		}
	}
}
