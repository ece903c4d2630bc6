package catalog

// The AMQP section of the catalog: durable exchanges, queues and bindings, per virtual host.
// It lives in its own file, <data-dir>/amqp-topology.json, with the same envelope as
// catalog.json ({"format": 1, "crc32c": ..., "state": ...}, checksum over the compact state)
// and the same atomic rewrite, so that AMQP declarations never contend with topic metadata.
// Arguments are kept as AMQP field tables encoded by the front end (opaque bytes, base64 in
// JSON), because JSON would lose their types (a long-long is not a long to RabbitMQ clients).

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/yardmq/yard/internal/atomicfile"
	"github.com/yardmq/yard/internal/datadir"
)

// AMQPTopology is every durable AMQP object.
type AMQPTopology struct {
	Exchanges []AMQPExchange `json:"exchanges"`
	Queues    []AMQPQueue    `json:"queues"`
	Bindings  []AMQPBinding  `json:"bindings"`
}

// AMQPExchange is a durable exchange.
type AMQPExchange struct {
	VHost      string `json:"vhost"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Internal   bool   `json:"internal,omitempty"`
	Args       []byte `json:"args,omitempty"` // encoded AMQP field table
}

// AMQPQueue is a durable queue. Its messages live in its own logs (internal/queue).
type AMQPQueue struct {
	VHost      string `json:"vhost"`
	Name       string `json:"name"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Args       []byte `json:"args,omitempty"`
}

// AMQPBinding is a binding between durable objects.
type AMQPBinding struct {
	VHost        string `json:"vhost"`
	Source       string `json:"source"`
	DestExchange bool   `json:"dest_exchange,omitempty"` // false: the destination is a queue
	Dest         string `json:"dest"`
	Key          string `json:"key"`
	Args         []byte `json:"args,omitempty"`
}

// AMQPStore saves the AMQP topology. Safe for concurrent use.
type AMQPStore struct {
	path    string
	existed bool       // the file was there when OpenAMQP ran, or has been written since
	mu      sync.Mutex // serialises writes
}

// OpenAMQP loads the topology file at path (an empty topology if it does not exist; Existed
// tells which: an absent file next to existing queue stores is the caller's to refuse).
func OpenAMQP(path string) (*AMQPStore, AMQPTopology, error) {
	s := &AMQPStore{path: path}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, AMQPTopology{}, nil
	}
	if err != nil {
		return nil, AMQPTopology{}, fmt.Errorf("cannot read AMQP topology: %w", err)
	}
	t, err := DecodeAMQP(data)
	if err != nil {
		return nil, AMQPTopology{}, fmt.Errorf("cannot load AMQP topology %s: %w", s.path, err)
	}
	s.existed = true
	return s, t, nil
}

// Existed reports whether the topology was read from its file, as opposed to started empty
// because there was none.
func (s *AMQPStore) Existed() bool { return s.existed }

// Path is the topology file.
func (s *AMQPStore) Path() string { return s.path }

// Save makes t the durable topology (temp file, fsync, rename, fsync dir).
func (s *AMQPStore) Save(t AMQPTopology) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := EncodeAMQP(t)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, data, datadir.FilePerm); err != nil {
		return fmt.Errorf("cannot write AMQP topology: %w", err)
	}
	s.existed = true
	return nil
}

// EncodeAMQP renders t in the on-disk format.
func EncodeAMQP(t AMQPTopology) ([]byte, error) { return sealJSON(t, "AMQP topology") }

// DecodeAMQP parses the on-disk format, verifying format version and checksum.
func DecodeAMQP(data []byte) (AMQPTopology, error) {
	var t AMQPTopology
	if err := openJSON(data, &t); err != nil {
		return AMQPTopology{}, err
	}
	return t, nil
}
