// Package adversarial_test is yard's bounded adversarial suite: a real `yard serve` process is
// fed what a hostile or unlucky client sends (mutated frames of real clients' sessions, sizes
// announced and never sent, output never read) and must keep serving everyone else, hold its
// memory, and lose nothing it acknowledged. Every loop is bounded in count and time, so the
// suite fits CI; the inputs are derived from a fixed seed, so a failure can be replayed.
package adversarial_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// recorder is a loopback TCP proxy in front of yard that keeps every byte a client sent to it.
// Real clients' sessions recorded through it are the raw material the mutators start from,
// so the suite speaks the protocols as clients really do without an encoder of its own.
type recorder struct {
	ln     net.Listener
	target string

	mu      sync.Mutex // guards sent and stopped
	sent    [][]byte   // one byte stream per recorded connection, in accept order
	stopped bool       // connections accepted from now on are proxied, not recorded
	wg      sync.WaitGroup
}

func newRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	r := listenRecorder(t)
	r.serve(target)
	return r
}

// listenRecorder binds the recorder's address before it knows its target, so that a Kafka
// broker can be started advertising the recorder (clients then reach every broker through it).
func listenRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &recorder{ln: ln}
}

func (r *recorder) serve(target string) {
	r.target = target
	go r.accept()
}

func (r *recorder) addr() string { return r.ln.Addr().String() }

func (r *recorder) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		idx := len(r.sent)
		if r.stopped {
			idx = -1
		} else {
			r.sent = append(r.sent, nil)
			r.wg.Add(2)
		}
		r.mu.Unlock()
		if idx < 0 {
			go func() { _, _ = io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
			go func() { _, _ = io.Copy(c, up); c.Close(); up.Close() }()
			continue
		}
		go func() { // client -> yard, recorded
			defer r.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					r.mu.Lock()
					r.sent[idx] = append(r.sent[idx], buf[:n]...)
					r.mu.Unlock()
					if _, werr := up.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			up.(*net.TCPConn).CloseWrite()
		}()
		go func() { // yard -> client
			defer r.wg.Done()
			_, _ = io.Copy(c, up)
			c.Close()
			up.Close()
		}()
	}
}

// sessions stops recording and returns every client byte stream recorded, once those clients
// have closed their connections. The recorder goes on proxying new connections.
func (r *recorder) sessions() [][]byte {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent
}

// kafkaFrames splits a recorded Kafka client stream into its size-prefixed request frames
// (each returned with its 4-byte prefix).
func kafkaFrames(stream []byte) [][]byte {
	var frames [][]byte
	for len(stream) >= 4 {
		n := int(binary.BigEndian.Uint32(stream))
		if n < 0 || 4+n > len(stream) {
			break
		}
		frames = append(frames, stream[:4+n])
		stream = stream[4+n:]
	}
	return frames
}

// amqpFrames splits a recorded AMQP client stream into the 8-byte protocol header followed by
// its frames (type, channel, size, payload, frame-end), each returned whole.
func amqpFrames(stream []byte) [][]byte {
	if len(stream) < 8 {
		return nil
	}
	frames := [][]byte{stream[:8]}
	stream = stream[8:]
	for len(stream) >= 8 {
		n := int(binary.BigEndian.Uint32(stream[3:7]))
		if 8+n > len(stream) {
			break
		}
		frames = append(frames, stream[:8+n])
		stream = stream[8+n:]
	}
	return frames
}
