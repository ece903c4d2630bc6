package amqp

// Publisher confirms for persistent messages on durable queues: a confirm is a promise that
// the message is on disk, so it is sent only once every queue that took the message has made
// it durable. The reader goroutine must not wait for that (it would serialise one fsync per
// publish), so such publishes go to the channel's confirmer: a goroutine that waits for them
// in publish order and sends coalesced basic.ack (multiple=true) frames. Every publisher whose
// appends landed before one fsync is confirmed by that fsync: this is where group commit pays.
//
// Ordering: confirms must reach the client in sequence order. While the confirmer has work,
// every confirm of the channel goes through it; the reader's own coalescing path
// (channel.confirmed) is used only when the confirmer is idle. confirmer.mu guards the
// channel's ackedUpTo and ackPending so both paths agree on what was sent.
//
// A batch is what was added while the previous one waited, and one fsync need not cover all of
// it: another channel's confirmer, or the log's own syncer, may have started a round after the
// first of its messages were written and before the last. Before a wait that blocks, the
// confirms of the messages already durable are sent, so that they wait for the fsync that
// covered them and not for the next one (measured flat out, 1/1: 18% of batches straddled two
// rounds, holding 7% of the confirms for one more fsync, 7 ms on average).

import (
	"context"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
)

type pendingConfirm struct {
	seq    uint64
	ok     bool
	nwaits int // its waits are the next nwaits of confirmer.waits
}

type confirmer struct {
	ch      *channel
	mu      sync.Mutex // guards everything below and ch.ackedUpTo / ch.ackPending
	pending []pendingConfirm
	waits   []queue.Waiter // of pending, in order
	// What run took last time, for reuse: pending and waits swap with these, so a busy
	// channel's confirms allocate nothing per publish.
	sparePending []pendingConfirm
	spareWaits   []queue.Waiter
	running      bool
	idle         chan struct{} // closed when run returns; made by the add that starts run
	closed       bool
	ctx          context.Context
	cancel       context.CancelFunc
}

func newConfirmer(ch *channel) *confirmer {
	ctx, cancel := context.WithCancel(context.Background())
	return &confirmer{ch: ch, ctx: ctx, cancel: cancel}
}

// busy reports whether confirms are in flight in the confirmer.
func (cf *confirmer) busy() bool {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	return cf.running
}

// add queues the confirm of publish seq, to be sent after waits.
func (cf *confirmer) add(seq uint64, ok bool, waits []queue.Waiter) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.closed {
		return
	}
	cf.pending = append(cf.pending, pendingConfirm{seq: seq, ok: ok, nwaits: len(waits)})
	cf.waits = append(cf.waits, waits...)
	if !cf.running {
		cf.running = true
		cf.idle = make(chan struct{})
		go cf.run()
	}
}

// drain waits until the confirmer has sent every confirm it holds, or until timeout
// passes; it reports whether it drained. Only the reader calls it, so no add races it.
func (cf *confirmer) drain(timeout time.Duration) bool {
	cf.mu.Lock()
	running, idle := cf.running, cf.idle
	cf.mu.Unlock()
	if !running {
		return true
	}
	if timeout <= 0 {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

func (cf *confirmer) run() {
	for {
		cf.mu.Lock()
		batch, waits := cf.pending, cf.waits
		cf.pending, cf.waits = cf.sparePending[:0], cf.spareWaits[:0]
		cf.sparePending, cf.spareWaits = nil, nil
		if len(batch) == 0 || cf.closed {
			cf.running = false
			close(cf.idle)
			cf.mu.Unlock()
			return
		}
		cf.mu.Unlock()
		var lastOK uint64
		rest := waits
		for _, p := range batch {
			ok := p.ok
			for _, w := range rest[:p.nwaits] {
				durable, blocks := w.Check()
				if durable {
					continue
				}
				if blocks && lastOK != 0 {
					// The messages before it are durable: confirm them now, not after the
					// fsync this one waits for.
					cf.mu.Lock()
					cf.sendAckLocked(lastOK)
					cf.mu.Unlock()
				}
				if err := w.Wait(cf.ctx); err != nil {
					ok = false
					if cf.ctx.Err() == nil { // not merely the channel closing
						c := cf.ch.c
						c.srv.rl.Warn("cannot make a message durable", "cannot make a message durable: nacked", "remote", c.nc.RemoteAddr().String(), "err", err)
					}
				}
			}
			rest = rest[p.nwaits:]
			if ok {
				lastOK = p.seq
				continue
			}
			cf.mu.Lock()
			cf.sendAckLocked(lastOK)
			if !cf.closed {
				cf.ch.send(&wire.BasicNack{DeliveryTag: p.seq})
			}
			cf.ch.ackedUpTo, cf.ch.ackPending = p.seq, p.seq
			cf.mu.Unlock()
		}
		clear(waits)
		cf.mu.Lock()
		cf.sendAckLocked(lastOK)
		cf.sparePending, cf.spareWaits = batch[:0], waits[:0]
		cf.mu.Unlock()
	}
}

// sendAckLocked confirms everything up to seq that is not confirmed yet.
func (cf *confirmer) sendAckLocked(seq uint64) {
	ch := cf.ch
	if seq <= ch.ackedUpTo {
		return
	}
	if !cf.closed {
		ch.send(&wire.BasicAck{DeliveryTag: seq, Multiple: seq-ch.ackedUpTo > 1})
	}
	ch.ackedUpTo = seq
	if ch.ackPending < seq {
		ch.ackPending = seq
	}
}

// close stops sending confirms: the channel is closing.
func (cf *confirmer) close() {
	cf.mu.Lock()
	cf.closed = true
	cf.pending, cf.waits = nil, nil
	cf.mu.Unlock()
	cf.cancel()
}

// deliveryMode returns the delivery-mode property of an encoded basic property list, or 0.
// It reads only the fields before it (content-type, content-encoding, headers), so the hot
// path does not decode whole header tables.
func deliveryMode(props []byte) uint8 {
	if len(props) < 2 {
		return 0
	}
	flags := uint16(props[0])<<8 | uint16(props[1])
	if flags&(1<<12) == 0 {
		return 0
	}
	r := props[2:]
	if flags&(1<<0) != 0 { // a continuation flag word follows
		return 0
	}
	for _, bit := range []uint{15, 14} { // content-type, content-encoding: shortstr
		if flags&(1<<bit) != 0 {
			if len(r) < 1 || len(r) < 1+int(r[0]) {
				return 0
			}
			r = r[1+int(r[0]):]
		}
	}
	if flags&(1<<13) != 0 { // headers: long size + table
		if len(r) < 4 {
			return 0
		}
		n := uint64(r[0])<<24 | uint64(r[1])<<16 | uint64(r[2])<<8 | uint64(r[3])
		if uint64(len(r)-4) < n {
			return 0
		}
		r = r[4+n:]
	}
	if len(r) < 1 {
		return 0
	}
	return r[0]
}
