package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Transport limits and timings.
const (
	sendQueueLen      = 4096                  // messages waiting for one peer; more are dropped
	batchBytesMax     = 4 << 20               // a batch frame is closed once it holds this much
	dialTimeout       = time.Second           // one connection attempt
	writeTimeout      = 10 * time.Second      // one frame written to a peer
	backoffMin        = 20 * time.Millisecond // first reconnection delay
	backoffMax        = time.Second           // reconnection delay cap
	readIdleTimeoutMs = 30_000                // an inbound connection silent this long is closed
	helloTimeout      = 5 * time.Second       // the dialer's hello must arrive within this
)

// transport carries Raft messages between hosts: one outbound TCP connection per peer, written
// by one goroutine that packs whatever is queued into one frame, and the peers' inbound
// connections, each read by one goroutine. Raft tolerates loss, so a full queue drops.
type transport struct {
	id      uint64
	ln      net.Listener
	log     *slog.Logger
	ping    time.Duration
	deliver func(from uint64, hbs []heartbeat, msgs []groupMsg)
	// deliverRange hands over a range request or response (rangefetch.go).
	deliverRange func(from uint64, kind byte, m rangeMsg)
	// deliverJoin hands over a join frame's body (join.go); an error closes the connection.
	deliverJoin func(from uint64, body []byte) error
	dropped     func(group, to uint64, m *pb.Message) // a message that will not be sent
	sentOK      func(group, to uint64, m *pb.Message) // a MsgSnap written to the connection

	peers map[uint64]*peer // fixed after construction

	// blocked, if set, says a peer is cut off (tests: a network partition).
	blocked atomic.Pointer[func(uint64) bool]
	// silent stops the pings (the host is stalled by a full disk).
	silent atomic.Bool
	sec    security // mutual TLS (tls.go)

	done   chan struct{}
	wg     sync.WaitGroup
	connMu sync.Mutex // guards conns
	conns  map[net.Conn]struct{}
}

// peer is the sending side towards one other host.
type peer struct {
	id        uint64
	addr      string
	q         chan outItem
	lastHeard atomic.Int64  // unix nanoseconds of the last frame received from it
	sent      atomic.Uint64 // heartbeat rows and messages written to it
}

type outItem struct {
	group uint64
	hb    heartbeat
	msg   *pb.Message // nil for a heartbeat row
	frame []byte      // a whole range frame, sent after the batch (msg nil)
}

func newTransport(id uint64, ln net.Listener, peers map[uint64]string, ping time.Duration, log *slog.Logger) *transport {
	t := &transport{id: id, ln: ln, log: log, ping: ping, peers: make(map[uint64]*peer),
		done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	for pid, addr := range peers {
		if pid != id {
			t.peers[pid] = &peer{id: pid, addr: addr, q: make(chan outItem, sendQueueLen)}
		}
	}
	return t
}

func (t *transport) start() {
	t.wg.Add(1)
	go t.acceptLoop()
	for _, p := range t.peers {
		t.wg.Add(1)
		go t.sendLoop(p)
	}
}

func (t *transport) stop() {
	close(t.done)
	t.ln.Close()
	t.connMu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.connMu.Unlock()
	t.wg.Wait()
}

func (t *transport) isBlocked(id uint64) bool {
	f := t.blocked.Load()
	return f != nil && (*f)(id)
}

func (t *transport) track(c net.Conn) bool {
	t.connMu.Lock()
	defer t.connMu.Unlock()
	select {
	case <-t.done:
		c.Close()
		return false
	default:
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *transport) untrack(c net.Conn) {
	t.connMu.Lock()
	delete(t.conns, c)
	t.connMu.Unlock()
	c.Close()
}

// send queues m of group for its destination; it never blocks.
func (t *transport) send(group uint64, m *pb.Message) {
	p := t.peers[m.GetTo()]
	if p == nil {
		return
	}
	it := outItem{group: group, msg: m}
	switch m.GetType() {
	case pb.MsgHeartbeat:
		if len(m.Context) == 0 {
			it = outItem{group: group, hb: heartbeat{group: group, term: m.GetTerm(), commit: m.GetCommit()}}
		}
	case pb.MsgHeartbeatResp:
		if len(m.Context) == 0 {
			it = outItem{group: group, hb: heartbeat{group: group, term: m.GetTerm(), flags: hbResponse}}
		}
	}
	t.enqueue(p, it)
}

// sendQuiesce tells peer to that the leader of group stops ticking it at term and commit.
func (t *transport) sendQuiesce(group, to, term, commit uint64) {
	if p := t.peers[to]; p != nil {
		t.enqueue(p, outItem{group: group, hb: heartbeat{group: group, term: term, commit: commit, flags: hbQuiesce}})
	}
}

func (t *transport) enqueue(p *peer, it outItem) {
	select {
	case p.q <- it:
	default:
		if it.msg != nil {
			t.dropped(it.group, p.id, it.msg)
		}
	}
}

// sendRange queues a range request or response frame for peer to; it never blocks. A frame
// that finds the queue full is dropped: the requester's timeout covers it.
func (t *transport) sendRange(to uint64, kind byte, m rangeMsg) bool {
	return t.sendFrame(to, appendRange(nil, kind, m))
}

// sendFrame queues a whole frame for peer to, written after the next batch; it never
// blocks, and a frame that finds the queue full (or the peer unreachable) is dropped.
func (t *transport) sendFrame(to uint64, frame []byte) bool {
	p := t.peers[to]
	if p == nil {
		return false
	}
	select {
	case p.q <- outItem{frame: frame}:
		return true
	default:
		return false
	}
}

// alive reports whether a frame came from peer id within d.
func (t *transport) alive(id uint64, d time.Duration, now time.Time) bool {
	p := t.peers[id]
	return p != nil && now.UnixNano()-p.lastHeard.Load() < d.Nanoseconds()
}

func (t *transport) sendLoop(p *peer) {
	defer t.wg.Done()
	backoff := backoffMin
	for {
		c, err := t.dial(p)
		if err != nil {
			t.drain(p)
			select {
			case <-t.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, backoffMax)
			continue
		}
		backoff = backoffMin
		err = t.writeLoop(p, c)
		t.untrack(c)
		if errors.Is(err, net.ErrClosed) {
			select {
			case <-t.done:
				return
			default:
			}
		}
		t.log.Debug("cluster: connection to peer lost", "peer", p.id, "error", err)
	}
}

func (t *transport) dial(p *peer) (net.Conn, error) {
	if t.isBlocked(p.id) {
		return nil, errors.New("blocked")
	}
	c, err := net.DialTimeout("tcp", p.addr, dialTimeout)
	if err != nil {
		return nil, fmt.Errorf("cannot dial peer %d: %w", p.id, err)
	}
	if !t.track(c) {
		return nil, net.ErrClosed
	}
	if c, err = t.secureOut(c, p); err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.Write(appendHello(nil, t.id, p.id)); err != nil {
		t.untrack(c)
		return nil, fmt.Errorf("cannot greet peer %d: %w", p.id, err)
	}
	return c, nil
}

// drain drops what is queued for an unreachable peer, telling Raft.
func (t *transport) drain(p *peer) {
	for {
		select {
		case it := <-p.q:
			if it.msg != nil {
				t.dropped(it.group, p.id, it.msg)
			}
		default:
			return
		}
	}
}

// writeLoop packs queued items into batch frames until the connection fails or the
// transport stops; with nothing queued for a ping interval it sends an empty batch.
func (t *transport) writeLoop(p *peer, c net.Conn) error {
	timer := time.NewTimer(t.ping)
	defer timer.Stop()
	var (
		buf  []byte
		hbs  []heartbeat
		msgs []encodedMsg
		sent []outItem // MsgSnap and MsgApp items of the frame, reported after the write
		rngs [][]byte  // range frames, written after the batch
	)
	for {
		var first outItem
		var have bool
		select {
		case <-t.done:
			return net.ErrClosed
		case first = <-p.q:
			have = true
		case <-timer.C:
		}
		timer.Reset(t.ping)
		if t.isBlocked(p.id) {
			t.drain(p)
			if have && first.msg != nil {
				t.dropped(first.group, p.id, first.msg)
			}
			return errors.New("blocked")
		}
		if !have && t.silent.Load() {
			continue // a stalled host does not ping: its peers must see it down
		}
		hbs, msgs, sent, rngs = hbs[:0], msgs[:0], sent[:0], rngs[:0]
		size := 0
		add := func(it outItem) {
			if it.frame != nil {
				rngs = append(rngs, it.frame)
				size += len(it.frame)
				return
			}
			if it.msg == nil {
				hbs = append(hbs, it.hb)
				size += heartbeatBytes
				return
			}
			em, err := encodeMsg(it.group, it.msg)
			if err != nil || len(em.data) > frameBytesMax-frameHeaderBytes-64 {
				t.log.Error("cluster: cannot send a raft message", "group", it.group, "type", it.msg.GetType(), "bytes", len(em.data), "error", err)
				t.dropped(it.group, p.id, it.msg)
				return
			}
			msgs = append(msgs, em)
			size += 12 + len(em.data)
			if it.msg.GetType() == pb.MsgSnap {
				sent = append(sent, it)
			}
		}
		if have {
			add(first)
		}
	fill:
		for size < batchBytesMax && len(hbs)+len(msgs) < sendQueueLen {
			select {
			case it := <-p.q:
				add(it)
			default:
				break fill
			}
		}
		buf = appendBatch(buf[:0], hbs, msgs)
		for _, f := range rngs {
			buf = append(buf, f...)
		}
		clear(rngs)
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.Write(buf); err != nil {
			for _, it := range sent {
				t.dropped(it.group, p.id, it.msg)
			}
			return err
		}
		p.sent.Add(uint64(len(hbs) + len(msgs)))
		for _, it := range sent {
			t.sentOK(it.group, p.id, it.msg)
		}
		if cap(buf) > 2*batchBytesMax {
			buf = nil // a snapshot passed through: do not keep its buffer
		}
	}
}

func (t *transport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			t.log.Error("cluster: accept failed", "error", err)
			select {
			case <-t.done:
				return
			case <-time.After(backoffMin):
			}
			continue
		}
		if t.sec.store != nil {
			c = tls.Server(c, t.serverTLS())
		}
		if !t.track(c) {
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.untrack(c)
			if err := t.readLoop(c); err != nil {
				t.log.Debug("cluster: inbound connection closed", "remote", c.RemoteAddr(), "error", err)
			}
		}()
	}
}

// readLoop serves one inbound connection: a hello naming a known peer and this node, then
// batches. A malformed frame closes this connection only.
func (t *transport) readLoop(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(helloTimeout))
	if err := t.secureIn(c); err != nil {
		return err
	}
	kind, body, buf, err := readFrame(c, nil)
	if err != nil {
		return err
	}
	if kind != frameHello {
		return fmt.Errorf("%w: first frame of kind %d", errBadFrame, kind)
	}
	from, to, err := decodeHello(body)
	if err != nil {
		return err
	}
	p := t.peers[from]
	if to != t.id || p == nil {
		return fmt.Errorf("cannot accept peer: hello from node %d to node %d at node %d", from, to, t.id)
	}
	if err := t.checkPeerCert(c, from); err != nil {
		return err
	}
	for {
		c.SetReadDeadline(time.Now().Add(readIdleTimeoutMs * time.Millisecond))
		kind, body, buf, err = readFrame(c, buf)
		if err != nil {
			return err
		}
		if kind != frameBatch && kind != frameRangeReq && kind != frameRangeResp && kind != frameJoin {
			return fmt.Errorf("%w: frame of kind %d", errBadFrame, kind)
		}
		if t.isBlocked(from) {
			continue
		}
		if kind == frameJoin {
			p.lastHeard.Store(time.Now().UnixNano())
			if err := t.deliverJoin(from, body); err != nil {
				return err
			}
			continue
		}
		if kind != frameBatch {
			m, err := decodeRange(body)
			if err != nil {
				return err
			}
			p.lastHeard.Store(time.Now().UnixNano())
			t.deliverRange(from, kind, m)
			continue
		}
		hbs, msgs, err := decodeBatch(body)
		if err != nil {
			return err
		}
		p.lastHeard.Store(time.Now().UnixNano())
		t.deliver(from, hbs, msgs)
		if cap(buf) > 2*batchBytesMax {
			buf = nil
		}
	}
}
