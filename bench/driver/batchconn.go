package main

import (
	"errors"
	"net"
	"sync"
	"time"
)

// batchConn gathers a client library's small writes into fewer system calls.
//
// amqp091-go flushes its buffered writer after every method it sends: one write system call
// per publish (method, header and body frames) and one per basic.ack. Profiled flat out against
// yard, those writes were about a third of the driver's CPU (the driver took about twice the
// broker's CPU per message), so on two shared cores the client, not the broker, set the pace.
// batchConn, given to amqp091-go through Config.Dial, copies each write into a pending buffer
// and wakes one writer goroutine, which sends everything pending in one system call as soon as
// it runs. Nothing waits for a timer or for a buffer to fill: a lone write goes out at once, and
// only writes that arrive while an earlier one is being sent (or before the writer got a CPU)
// share a system call. What the client sends, and when it considers a publish or an ack done,
// is unchanged; the same driver runs against every broker.
//
// A failed write is returned by the next Write (or Close); pending bytes are bounded by
// maxPending, beyond which Write blocks until the writer has taken them.
type batchConn struct {
	net.Conn

	mu      sync.Mutex
	drained *sync.Cond // signalled when the writer takes the pending bytes, or stops
	pending []byte
	err     error // the first write error; every later Write returns it
	closing bool
	wake    chan struct{} // capacity 1: the writer has something to do
	done    chan struct{} // closed when the writer has stopped
}

// maxPending bounds the bytes a batchConn holds that the writer has not taken yet.
const maxPending = 1 << 20

// closeFlushTimeout bounds how long Close waits for pending bytes to go out before it closes
// the connection under a writer stuck on a peer that no longer reads.
const closeFlushTimeout = 2 * time.Second

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
	b.drained = sync.NewCond(&b.mu)
	go b.writer()
	return b
}

var errBatchConnClosed = errors.New("cannot write: connection closed")

// Write copies p into the pending buffer and wakes the writer; it never blocks on the network
// unless maxPending bytes are already waiting.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.pending) >= maxPending && b.err == nil && !b.closing {
		b.drained.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	if b.closing {
		b.mu.Unlock()
		return 0, errBatchConnClosed
	}
	b.pending = append(b.pending, p...)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// writer sends the pending bytes, everything that gathered since its last write in one system
// call, until Close; it swaps two buffers so that Write never waits for a system call.
func (b *batchConn) writer() {
	defer close(b.done)
	var spare []byte
	for {
		b.mu.Lock()
		for len(b.pending) == 0 && !b.closing {
			b.mu.Unlock()
			<-b.wake
			b.mu.Lock()
		}
		if len(b.pending) == 0 { // closing, nothing left
			b.drained.Broadcast()
			b.mu.Unlock()
			return
		}
		out := b.pending
		b.pending = spare[:0]
		b.drained.Broadcast()
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		spare = out
		if err != nil {
			b.mu.Lock()
			b.err = err
			b.pending = nil
			b.drained.Broadcast()
			b.mu.Unlock()
			return
		}
	}
}

// Close sends what is pending (for at most closeFlushTimeout), then closes the connection.
func (b *batchConn) Close() error {
	b.mu.Lock()
	b.closing = true
	b.drained.Broadcast()
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(closeFlushTimeout)
	defer t.Stop()
	select {
	case <-b.done:
	case <-t.C:
	}
	return b.Conn.Close()
}
