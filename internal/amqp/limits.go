package amqp

// RabbitMQ's user limits (max-connections, max-channels: the user's total across its
// connections) and vhost limits (max-connections, max-queues), read from the user store at
// the moment they apply: connection.open, channel.open, queue.declare of a new queue. A
// limit reached refuses with RabbitMQ's code and words; 0 refuses all, no limit set allows
// any number.

import (
	"sync"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/auth"
)

// Limits gives the limits in force (internal/auth's Store); nil in Config: none.
type Limits interface {
	UserLimit(user, name string) (int64, bool)
	VhostLimit(vhost, name string) (int64, bool)
}

// usage counts what the limits bound, across the server's connections.
type usage struct {
	mu         sync.Mutex
	userConns  map[string]int
	vhostConns map[string]int
	userChans  map[string]int
	chans      map[*channel]struct{} // open channels, for the management API (Channels)
}

func newUsage() *usage {
	return &usage{userConns: map[string]int{}, vhostConns: map[string]int{}, userChans: map[string]int{}, chans: map[*channel]struct{}{}}
}

// acquireConn counts an opening connection against its user's and vhost's limits.
func (c *conn) acquireConn(m wire.Method, vhostName string) *amqpError {
	u := c.srv.usage
	lim := c.srv.cfg.Limits
	u.mu.Lock()
	defer u.mu.Unlock()
	if lim != nil {
		if n, ok := lim.VhostLimit(vhostName, auth.LimitMaxConnections); ok && int64(u.vhostConns[vhostName]) >= n {
			return connErr(wire.NotAllowed, m, "access to vhost '%s' refused for user '%s': connection limit (%d) is reached", vhostName, c.user, n)
		}
		if n, ok := lim.UserLimit(c.user, auth.LimitMaxConnections); ok && int64(u.userConns[c.user]) >= n {
			return connErr(wire.NotAllowed, m, "Connection refused for user '%s': user connection limit (%d) is reached", c.user, n)
		}
	}
	u.vhostConns[vhostName]++
	u.userConns[c.user]++
	c.countedVhost, c.counted = vhostName, true
	return nil
}

// acquireChannel counts an opening channel against its user's max-channels.
func (c *conn) acquireChannel(m wire.Method) *amqpError {
	u := c.srv.usage
	u.mu.Lock()
	defer u.mu.Unlock()
	if lim := c.srv.cfg.Limits; lim != nil {
		if n, ok := lim.UserLimit(c.user, auth.LimitMaxChannels); ok && int64(u.userChans[c.user]) >= n {
			return connErr(wire.NotAllowed, m, "number of channels opened for user '%s' has reached the maximum allowed user limit of (%d)", c.user, n)
		}
	}
	u.userChans[c.user]++
	c.countedChans++
	return nil
}

// channelOpened lists ch, counted by acquireChannel, among the open channels.
func (c *conn) channelOpened(ch *channel) {
	u := c.srv.usage
	u.mu.Lock()
	u.chans[ch] = struct{}{}
	u.mu.Unlock()
}

// channelGone uncounts a channel removed from c.channels.
func (c *conn) channelGone(ch *channel) {
	if c.countedChans == 0 {
		return
	}
	u := c.srv.usage
	u.mu.Lock()
	delete(u.chans, ch)
	c.countedChans--
	if u.userChans[c.user]--; u.userChans[c.user] <= 0 {
		delete(u.userChans, c.user)
	}
	u.mu.Unlock()
}

// releaseCounts uncounts the connection and its channels when it ends.
func (c *conn) releaseCounts() {
	u := c.srv.usage
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, ch := range c.channels {
		delete(u.chans, ch)
	}
	if c.countedChans > 0 {
		if u.userChans[c.user] -= c.countedChans; u.userChans[c.user] <= 0 {
			delete(u.userChans, c.user)
		}
		c.countedChans = 0
	}
	if c.counted {
		if u.userConns[c.user]--; u.userConns[c.user] <= 0 {
			delete(u.userConns, c.user)
		}
		if u.vhostConns[c.countedVhost]--; u.vhostConns[c.countedVhost] <= 0 {
			delete(u.vhostConns, c.countedVhost)
		}
		c.counted = false
	}
}

// checkQueueLimit refuses declaring a new queue in a vhost at its max-queues.
func (ch *channel) checkQueueLimit(m wire.Method, name string) *amqpError {
	lim := ch.c.srv.cfg.Limits
	if lim == nil {
		return nil
	}
	n, ok := lim.VhostLimit(ch.vhostName(), auth.LimitMaxQueues)
	if !ok || ch.c.vh.Queue(name) != nil {
		return nil
	}
	if int64(ch.c.vh.QueueCount()) >= n {
		return channelErr(wire.PreconditionFailed, m, "cannot declare queue '%s': queue limit in vhost '%s' (%d) is reached", name, ch.vhostName(), n)
	}
	return nil
}
