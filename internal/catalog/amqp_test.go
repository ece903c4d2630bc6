package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestAMQPTopologyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, got, err := OpenAMQP(filepath.Join(dir, "amqp-topology.json"))
	if err != nil || len(got.Queues) != 0 {
		t.Fatalf("OpenAMQP empty: %v %+v", err, got)
	}
	want := AMQPTopology{
		Exchanges: []AMQPExchange{{VHost: "/", Name: "x", Type: "topic", Args: []byte{0, 0, 0, 0}}},
		Queues:    []AMQPQueue{{VHost: "/", Name: "q", AutoDelete: true}},
		Bindings:  []AMQPBinding{{VHost: "/", Source: "x", Dest: "q", Key: "a.#"}},
	}
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	_, got, err = OpenAMQP(filepath.Join(dir, "amqp-topology.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	path := filepath.Join(dir, "amqp-topology.json")
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 1
	os.WriteFile(path, data, 0o644)
	if _, _, err := OpenAMQP(filepath.Join(dir, "amqp-topology.json")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged file: %v, want ErrCorrupt", err)
	}
}

func FuzzDecodeAMQP(f *testing.F) {
	b, _ := EncodeAMQP(AMQPTopology{Queues: []AMQPQueue{{VHost: "/", Name: "q"}}})
	f.Add(b)
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := DecodeAMQP(data)
		if err != nil {
			return
		}
		again, err := EncodeAMQP(top)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeAMQP(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
