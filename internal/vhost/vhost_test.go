package vhost

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// testCodec stands in for the front end's codec: the domain must not care how tables and
// properties are encoded. Tables are JSON; properties are gob (which keeps int64 and
// time.Time, as field tables do).
type testCodec struct{}

type testProps struct {
	Headers       map[string]any
	Expiration    string
	HasExpiration bool
}

func init() {
	gob.Register(map[string]any{})
	gob.Register([]any{})
	gob.Register(time.Time{})
}

func (testCodec) AppendTable(dst []byte, t map[string]any) []byte {
	b, _ := json.Marshal(t)
	return append(dst, b...)
}

func (testCodec) DecodeTable(b []byte) (map[string]any, error) {
	var t map[string]any
	err := json.Unmarshal(b, &t)
	return t, err
}

func (testCodec) ParseMessage(*queue.Message) {}

// AppendStreamRecord is not a batch: the domain tests publish to no stream queue.
func (testCodec) AppendStreamRecord(dst []byte, _ int64, _ string, _, body []byte) []byte {
	return append(dst, body...)
}

func decodeProps(b []byte) testProps {
	var p testProps
	if len(b) > 0 {
		_ = gob.NewDecoder(bytes.NewReader(b)).Decode(&p)
	}
	return p
}

func encodeProps(p testProps) []byte {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(p); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func (testCodec) Headers(props []byte) (map[string]any, string, bool) {
	p := decodeProps(props)
	return p.Headers, p.Expiration, p.HasExpiration
}

func (testCodec) WithHeaders(props []byte, headers map[string]any, dropExpiration bool) []byte {
	p := decodeProps(props)
	p.Headers = headers
	if dropExpiration {
		p.Expiration, p.HasExpiration = "", false
	}
	return encodeProps(p)
}

// memTopology is a TopologyStore that keeps the last save.
type memTopology struct{ last catalog.AMQPTopology }

func (m *memTopology) Save(t catalog.AMQPTopology) error { m.last = t; return nil }

func newHosts(t *testing.T, cfg Config) *Hosts {
	t.Helper()
	cfg.Codec = testCodec{}
	h := New(cfg)
	t.Cleanup(func() { h.Close() })
	return h
}

func kindOf(err error) error {
	for _, k := range []error{ErrAccessRefused, ErrNotFound, ErrLocked, ErrPrecondition, ErrInvalid, ErrInternal} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

func TestDurableTopologySurvivesRestore(t *testing.T) {
	t.Parallel()
	store := &memTopology{}
	h := newHosts(t, Config{Topology: store})
	vh := h.Get("/")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(vh.DeclareExchange(route.Exchange{Name: "orders", Type: "topic", Durable: true}))
	must(vh.DeclareExchange(route.Exchange{Name: "scratch", Type: "fanout"}))
	_, created, err := vh.DeclareQueue(QueueDeclaration{Name: "q", Durable: true, Args: map[string]any{"x-max-length": int64(5)}})
	must(err)
	if !created {
		t.Fatal("a new queue was not created")
	}
	_, _, err = vh.DeclareQueue(QueueDeclaration{Name: "tmp", Exclusive: true, Owner: "conn1"})
	must(err)
	must(vh.Bind(route.Binding{Source: "orders", Dest: route.Dest{Name: "q"}, Key: "eu.#"}, nil))
	must(vh.Bind(route.Binding{Source: "orders", Dest: route.Dest{Name: "tmp"}, Key: "#"}, "conn1"))
	if len(store.last.Exchanges) != 1 || len(store.last.Queues) != 1 || len(store.last.Bindings) != 1 {
		t.Fatalf("saved %+v, want only the durable exchange, queue and binding", store.last)
	}

	h2 := newHosts(t, Config{})
	must(h2.Restore(store.last))
	vh2 := h2.Get("/")
	if qs := vh2.Queue("q"); qs == nil || qs.Options().Args["x-max-length"] != float64(5) {
		t.Fatalf("restored queue %+v", qs)
	}
	if vh2.Queue("tmp") != nil {
		t.Fatal("an exclusive queue was restored")
	}
	names, err := vh2.Topology().Route("orders", "eu.de", nil, nil)
	if err != nil || len(names) != 1 || names[0] != "q" {
		t.Fatalf("routed to %v, %v", names, err)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	vh := newHosts(t, Config{}).Get("/")
	if _, _, err := vh.DeclareQueue(QueueDeclaration{Name: "mine", Exclusive: true, Owner: "a"}); err != nil {
		t.Fatal(err)
	}
	_, _, quorumErr := vh.DeclareQueue(QueueDeclaration{Name: "qq", Args: map[string]any{"x-queue-type": "quorum"}})
	_, _, typeErr := vh.DeclareQueue(QueueDeclaration{Name: "t", Args: map[string]any{"x-queue-type": "lazy"}})
	_, _, streamErr := vh.DeclareQueue(QueueDeclaration{Name: "s", Durable: true, Args: map[string]any{"x-queue-type": "stream"}})
	_, _, redeclareErr := vh.DeclareQueue(QueueDeclaration{Name: "mine", Exclusive: true, Durable: true, Owner: "a"})
	_, lockedErr := vh.LookupQueue("mine", "b")
	_, _, deleteErr := vh.DeleteQueueIf("mine", "b", false, false)
	for _, tc := range []struct {
		err  error
		kind error
		text string
	}{
		{quorumErr, ErrPrecondition, "invalid property 'non-durable' for queue 'qq' in vhost '/'"},
		{typeErr, ErrPrecondition, `invalid arg 'x-queue-type' for queue 't' in vhost '/': "unsupported queue type 'lazy'"`},
		{streamErr, ErrPrecondition, "cannot declare stream queue 's' in vhost '/': stream queues need the topic manager, which this server was not given"},
		{redeclareErr, ErrPrecondition, "inequivalent arg 'durable' for queue 'mine' in vhost '/': received 'true' but current is 'false'"},
		{lockedErr, ErrLocked, "cannot obtain exclusive access to locked queue 'mine' in vhost '/'"},
		{deleteErr, ErrLocked, "cannot obtain exclusive access to locked queue 'mine' in vhost '/'"},
		{vh.DeclareExchange(route.Exchange{Name: "amq.mine", Type: "direct"}), ErrAccessRefused, "exchange name 'amq.mine' contains reserved prefix 'amq.*'"},
		{vh.DeclareExchange(route.Exchange{Name: "x", Type: "nope"}), ErrInvalid, "unknown exchange type 'nope'"},
		{vh.Bind(route.Binding{Source: "missing", Dest: route.Dest{Name: "mine"}}, "a"), ErrNotFound, "no exchange 'missing' in vhost '/'"},
		{vh.Bind(route.Binding{Source: "", Dest: route.Dest{Name: "mine"}}, "a"), ErrAccessRefused, "operation not permitted on the default exchange"},
	} {
		if kindOf(tc.err) != tc.kind || tc.err == nil || !strings.HasPrefix(tc.err.Error(), tc.text) {
			t.Errorf("got %v, want %v: %q", tc.err, tc.kind, tc.text)
		}
	}
}

func TestDeadLetterRoutesThroughTheExchange(t *testing.T) {
	t.Parallel()
	vh := newHosts(t, Config{}).Get("/")
	if err := vh.DeclareExchange(route.Exchange{Name: "dlx", Type: "fanout"}); err != nil {
		t.Fatal(err)
	}
	src, _, err := vh.DeclareQueue(QueueDeclaration{Name: "src", Args: map[string]any{"x-dead-letter-exchange": "dlx", "x-max-length": int32(1)}})
	if err != nil {
		t.Fatal(err)
	}
	dead, _, err := vh.DeclareQueue(QueueDeclaration{Name: "dead"})
	if err != nil {
		t.Fatal(err)
	}
	if err := vh.Bind(route.Binding{Source: "dlx", Dest: route.Dest{Name: "dead"}}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := src.Publish(&queue.Message{RoutingKey: "k", Body: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	d, _, ok, err := dead.Get(true)
	if err != nil || !ok {
		t.Fatalf("nothing dead-lettered: %v", err)
	}
	h, _, _ := testCodec{}.Headers(d.Message.Properties)
	if string(d.Message.Body) != "0" || h["x-first-death-reason"] != "maxlen" || h["x-first-death-queue"] != "src" || d.Message.Exchange != "dlx" {
		t.Fatalf("dead letter %+v with headers %v", d.Message, h)
	}
}

// TestXDeath: RabbitMQ's x-death keeps one entry per queue and reason, most recent first,
// counting repeats; x-first-death-* never changes; the expiration goes, kept in the entry.
func TestXDeath(t *testing.T) {
	t.Parallel()
	codec := testCodec{}
	now := time.Unix(1700000000, 0)
	m := &queue.Message{Exchange: "ex", RoutingKey: "rk", Properties: encodeProps(testProps{Expiration: "60000", HasExpiration: true,
		Headers: map[string]any{"app": "kept"}})}
	props, _ := withDeath(codec, m, queue.ReasonExpired, "a", now)
	m = &queue.Message{Exchange: "dlx", RoutingKey: "rk", Properties: props}
	props, _ = withDeath(codec, m, queue.ReasonRejected, "b", now)
	m.Properties = props
	props, headers := withDeath(codec, m, queue.ReasonExpired, "a", now.Add(time.Minute))

	h, _, hasExpiration := codec.Headers(props)
	if hasExpiration {
		t.Fatal("the expiration was kept")
	}
	if h["app"] != "kept" || h["x-first-death-queue"] != "a" || h["x-first-death-reason"] != "expired" || h["x-last-death-queue"] != "a" {
		t.Fatalf("headers %v", h)
	}
	deaths := h["x-death"].([]any)
	first, second := deaths[0].(map[string]any), deaths[1].(map[string]any)
	if len(deaths) != 2 || first["queue"] != "a" || first["count"] != int64(2) || first["original-expiration"] != "60000" ||
		first["exchange"] != "ex" || !first["time"].(time.Time).Equal(now.Add(time.Minute)) {
		t.Fatalf("x-death %v", deaths)
	}
	if second["queue"] != "b" || second["reason"] != "rejected" || second["count"] != int64(1) {
		t.Fatalf("x-death %v", deaths)
	}
	if headers["x-last-death-queue"] != "a" {
		t.Fatalf("routing headers %v", headers)
	}
}

// TestStoresKeepUnknownFinishTombstones: a store no durable queue owns is kept at start-up (it
// used to be removed) and moved aside when its queue is declared again; a tombstone is removed;
// a missing topology file in front of stores is refused.
func TestStoresKeepUnknownFinishTombstones(t *testing.T) {
	t.Parallel()
	layout := datadir.New(t.TempDir())
	s := NewStores(layout, queue.LogStoreOptions{}, nil)
	kept, unknown := s.Dir("/", "kept q"), s.Dir("/", "gone")
	if kept != filepath.Join(layout.Root(), "queues", "%2F", "kept%20q") {
		t.Fatalf("store dir %s", kept)
	}
	tomb := s.Dir("/", "dropped") + datadir.DeletedSuffix
	for _, dir := range []string{kept, unknown, tomb} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	topo := catalog.AMQPTopology{Queues: []catalog.AMQPQueue{{VHost: "/", Name: "kept q"}}}
	if err := s.Check(topo, false); err == nil || !strings.Contains(err.Error(), "amqp-topology.json is missing") {
		t.Fatalf("missing topology file not refused: %v", err)
	}
	if err := s.Check(topo, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(unknown); err != nil {
		t.Fatalf("unknown store removed: %v", err)
	}
	if _, err := os.Stat(tomb); !os.IsNotExist(err) {
		t.Fatalf("tombstone still there: %v", err)
	}
	st, err := s.Open("/", "gone", queue.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if moved, _ := filepath.Glob(unknown + ".orphan-*"); len(moved) != 1 {
		t.Fatalf("unknown store not moved aside: %v", moved)
	}
}

// TestNoFrontEndImports keeps dependencies pointing one way: the domain never imports a
// front end or the wire codec.
func TestNoFrontEndImports(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pf.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/yardmq/yard/internal/amqp") || strings.HasPrefix(p, "github.com/yardmq/yard/internal/kafka") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
