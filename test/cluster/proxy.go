// Package cluster runs 3-process yard clusters on loopback under injected faults (killed,
// paused, wiped and disk-full nodes; dropped, delayed and one-way partitioned links) and checks
// what Kafka clients were promised: every acknowledged record is present at its acknowledged
// offset, none is duplicated under the idempotent producer, offsets are contiguous, and
// produce, consume and consumer groups work again within a bound after healing.
//
// The short version runs in `make test`; YARD_CLUSTER_ROUNDS=N (test/cluster/faults.sh N)
// runs N rounds and prints the figures.
package cluster

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Link is a TCP proxy for one directed link between two nodes: node A's --peers names the
// proxy as B's address, and the proxy forwards to B's --cluster-listen. yard's transport uses
// one connection per peer and direction (the dialer writes, the acceptor only reads), so the
// connection through A->B's proxy carries A's messages to B and nothing else: blocking it is a
// real one-way partition.
type Link struct {
	From, To int
	ln       net.Listener
	target   string

	mu    sync.Mutex
	down  bool
	delay time.Duration
	conns map[net.Conn]struct{}
	done  bool
}

// newLink listens on a free loopback port and forwards to target.
func newLink(from, to int, target string) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Link{From: from, To: to, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go l.serve()
	return l, nil
}

// Addr is the proxy's address (what the sending node dials).
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Drop closes the link's connections and refuses new ones until Heal.
func (l *Link) Drop() {
	l.mu.Lock()
	l.down = true
	l.closeConnsLocked()
	l.mu.Unlock()
}

// Delay adds d of latency to every byte forwarded from now on (0: none).
func (l *Link) Delay(d time.Duration) {
	l.mu.Lock()
	l.delay = d
	l.mu.Unlock()
}

// Heal undoes Drop and Delay.
func (l *Link) Heal() {
	l.mu.Lock()
	l.down, l.delay = false, 0
	l.mu.Unlock()
}

// Close stops the proxy.
func (l *Link) Close() {
	l.mu.Lock()
	l.done = true
	l.closeConnsLocked()
	l.mu.Unlock()
	l.ln.Close()
}

func (l *Link) closeConnsLocked() {
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
}

func (l *Link) currentDelay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.delay
}

func (l *Link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		refuse := l.down || l.done
		l.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		go l.forward(c)
	}
}

func (l *Link) forward(c net.Conn) {
	u, err := net.DialTimeout("tcp", l.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	if l.down || l.done {
		l.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	l.conns[c], l.conns[u] = struct{}{}, struct{}{}
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pipe(u, c) }()
	go func() { defer wg.Done(); l.pipe(c, u) }()
	wg.Wait()
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, u)
	l.mu.Unlock()
}

type chunk struct {
	due  time.Time
	data []byte
}

// pipe copies src to dst, holding each chunk back by the link's delay (order kept); when
// either side fails both are closed.
func (l *Link) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	q := make(chan chunk, 1024)
	werr := make(chan error, 1)
	go func() {
		for ch := range q {
			if w := time.Until(ch.due); w > 0 {
				time.Sleep(w)
			}
			if _, err := dst.Write(ch.data); err != nil {
				werr <- err
				src.Close()
				for range q {
				}
				return
			}
		}
		werr <- nil
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{due: time.Now().Add(l.currentDelay()), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			break
		}
	}
	close(q)
	<-werr
}
