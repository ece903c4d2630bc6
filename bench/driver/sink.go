package main

// The sink: a measurement tool of the driver, not a broker. It speaks just enough of the
// Kafka protocol for the franz-go producer of `driver kafka -consume=false` (ApiVersions,
// Metadata, CreateTopics, DeleteTopics, InitProducerId, Produce) and answers every produce
// with success at once, storing nothing. Driving it flat out measures the ceiling of the
// driver (client CPU, loopback TCP) on the machine when the broker side costs next to
// nothing: no broker can be measured faster than that with this driver on this machine.
//
//	driver sink -listen 127.0.0.1:9092 [-partitions 6]

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func runSink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9092", "address to listen on")
	partitions := fs.Int("partitions", 6, "partitions of a topic the sink has not been asked to create")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *listen, err)
	}
	s := newSink(ln, int32(*partitions))
	fmt.Println("SINK_BOOTSTRAP=" + ln.Addr().String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; ln.Close() }()
	err = s.serve()
	fmt.Fprintf(os.Stderr, "sink: %d produce requests, %d records\n", s.requests.Load(), s.records.Load())
	return err
}

// sink is the state of a running sink: topics by name with their partition counts, and
// counters.
type sink struct {
	ln         net.Listener
	partitions int32
	mu         sync.Mutex
	topics     map[string]int32
	nextPID    atomic.Int64
	requests   atomic.Int64
	records    atomic.Int64
}

func newSink(ln net.Listener, partitions int32) *sink {
	return &sink{ln: ln, partitions: partitions, topics: map[string]int32{}}
}

// serve accepts connections until the listener is closed.
func (s *sink) serve() error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("cannot accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer nc.Close()
			_ = s.conn(nc)
		}()
	}
}

// conn answers one connection's requests in order, flushing whenever no further request is
// already buffered.
func (s *sink) conn(nc net.Conn) error {
	br := bufio.NewReaderSize(nc, 1<<20)
	bw := bufio.NewWriterSize(nc, 64<<10)
	var frame, out []byte
	for {
		var size [4]byte
		if _, err := io.ReadFull(br, size[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n < 10 || n > 100<<20 {
			return fmt.Errorf("cannot read request: frame of %d bytes", n)
		}
		if cap(frame) < n {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return err
		}
		var err error
		if out, err = s.answer(frame, out[:0]); err != nil {
			return err
		}
		if out != nil {
			if _, err := bw.Write(out); err != nil {
				return err
			}
		}
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// answer decodes one request frame and appends its response frame to out (nil: no
// response, an acks=0 produce).
func (s *sink) answer(frame, out []byte) ([]byte, error) {
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := binary.BigEndian.Uint32(frame[4:])
	idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	rest := frame[10:]
	if idLen > 0 {
		if idLen > len(rest) {
			return nil, errors.New("cannot decode request: client id past the frame")
		}
		rest = rest[idLen:]
	}
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("cannot decode request: unknown api key %d", key)
	}
	req.SetVersion(version)
	flexible := req.IsFlexible()
	if flexible {
		// Request header v2: a tagged-field section; the clients send none.
		if len(rest) == 0 || rest[0] != 0 {
			return nil, errors.New("cannot decode request: tagged header fields")
		}
		rest = rest[1:]
	}
	if version > req.MaxVersion() {
		return nil, fmt.Errorf("cannot decode %s v%d: newer than kmsg knows", kmsg.NameForKey(key), version)
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, fmt.Errorf("cannot decode %s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	resp, err := s.respond(req)
	if resp == nil || err != nil {
		return nil, err
	}
	start := len(out)
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, corr)
	if flexible && key != int16(kmsg.ApiVersions) {
		out = append(out, 0)
	}
	resp.SetVersion(version)
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out, nil
}

func (s *sink) topicPartitions(name string) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.topics[name]; ok {
		return n
	}
	return s.partitions
}

// respond builds the response to one request; nil for an acks=0 produce.
func (s *sink) respond(req kmsg.Request) (kmsg.Response, error) {
	resp := s.response(req)
	if resp == nil {
		if p, ok := req.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("cannot answer %s: not served by the sink", kmsg.NameForKey(req.Key()))
	}
	return resp, nil
}

func (s *sink) response(req kmsg.Request) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []kmsg.Key{kmsg.Produce, kmsg.Metadata, kmsg.ApiVersions, kmsg.CreateTopics,
			kmsg.DeleteTopics, kmsg.InitProducerID} {
			v := kmsg.NewApiVersionsResponseApiKey()
			v.ApiKey, v.MinVersion, v.MaxVersion = int16(k), 0, kmsg.RequestForKey(int16(k)).MaxVersion()
			if k == kmsg.Produce {
				v.MinVersion = 3
			}
			resp.ApiKeys = append(resp.ApiKeys, v)
		}
		return resp
	case *kmsg.MetadataRequest:
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		host, port := s.hostPort()
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, port
		resp.Brokers = append(resp.Brokers, b)
		resp.ControllerID = 0
		var names []string
		if r.Topics == nil {
			s.mu.Lock()
			for n := range s.topics {
				names = append(names, n)
			}
			s.mu.Unlock()
		}
		for _, t := range r.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
		for _, name := range names {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = kmsg.StringPtr(name)
			t.TopicID = topicID(name)
			for p := int32(0); p < s.topicPartitions(name); p++ {
				mp := kmsg.NewMetadataResponseTopicPartition()
				mp.Partition, mp.Leader, mp.Replicas, mp.ISR = p, 0, []int32{0}, []int32{0}
				t.Partitions = append(t.Partitions, mp)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	case *kmsg.CreateTopicsRequest:
		resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, t := range r.Topics {
			n := t.NumPartitions
			if n <= 0 {
				n = s.partitions
			}
			s.mu.Lock()
			s.topics[t.Topic] = n
			s.mu.Unlock()
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.NumPartitions, rt.ReplicationFactor = t.Topic, topicID(t.Topic), n, 1
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.DeleteTopicsRequest:
		resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic = t.Topic
			if t.Topic != nil {
				s.mu.Lock()
				delete(s.topics, *t.Topic)
				s.mu.Unlock()
			}
			resp.Topics = append(resp.Topics, rt)
		}
		for _, name := range r.TopicNames {
			s.mu.Lock()
			delete(s.topics, name)
			s.mu.Unlock()
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic = kmsg.StringPtr(name)
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.InitProducerIDRequest:
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = s.nextPID.Add(1), 0
		return resp
	case *kmsg.ProduceRequest:
		s.requests.Add(1)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = p.Partition, 0, -1, 0
				if len(p.Records) >= 61 { // a v2 record batch header: its record count at 57
					s.records.Add(int64(binary.BigEndian.Uint32(p.Records[57:])))
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		if r.Acks == 0 {
			return nil
		}
		return resp
	}
	return nil
}

func (s *sink) hostPort() (string, int32) {
	a := s.ln.Addr().(*net.TCPAddr)
	return a.IP.String(), int32(a.Port)
}

// topicID derives a stable topic ID from its name.
func topicID(name string) [16]byte {
	var id [16]byte
	copy(id[:], "sink")
	copy(id[4:], strconv.Itoa(len(name))+name)
	return id
}
