package amqp

// What the management API shows of the open channels (/api/channels, /api/consumers, the
// yard_channels gauge): the channels are listed under usage.mu (limits.go), each described
// under its own lock.

// Channels is the number of open AMQP channels, every connection's.
func (s *Server) Channels() int {
	u := s.usage
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.chans)
}

// ChannelInfo is one open channel as the management API lists it.
type ChannelInfo struct {
	Remote, Local  string // the connection's addresses
	Number         uint16
	User, VHost    string
	Prefetch       int // basic.qos global=false: each new consumer's limit
	GlobalPrefetch int // basic.qos global=true: the channel's limit
	Unacked        int // deliveries not yet acknowledged
	Consumers      []ConsumerInfo
}

// ConsumerInfo is one consumer of a channel.
type ConsumerInfo struct {
	Tag         string
	Queue       string
	AckRequired bool
	Prefetch    int
	Exclusive   bool           // basic.consume's exclusive flag
	Arguments   map[string]any // basic.consume's arguments (not to be modified)
}

// ChannelList describes every open channel and its consumers, taking each channel's lock
// in turn (a channel opened or closed meanwhile may be missed or listed).
func (s *Server) ChannelList() []ChannelInfo {
	s.usage.mu.Lock()
	chans := make([]*channel, 0, len(s.usage.chans))
	for ch := range s.usage.chans {
		chans = append(chans, ch)
	}
	s.usage.mu.Unlock()
	out := make([]ChannelInfo, 0, len(chans))
	for _, ch := range chans {
		out = append(out, ch.info())
	}
	return out
}

func (ch *channel) info() ChannelInfo {
	c := ch.c
	ci := ChannelInfo{Remote: c.nc.RemoteAddr().String(), Local: c.nc.LocalAddr().String(), Number: ch.id, User: c.user}
	if c.vh != nil {
		ci.VHost = c.vh.Name()
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ci.Prefetch, ci.GlobalPrefetch, ci.Unacked = ch.prefetch, ch.globalPrefetch, len(ch.unacked)
	for _, cons := range ch.consumers {
		if !cons.active {
			continue
		}
		ci.Consumers = append(ci.Consumers, ConsumerInfo{Tag: cons.tag, Queue: cons.qs.Name(), AckRequired: !cons.noAck, Prefetch: cons.prefetch,
			Exclusive: cons.exclusive, Arguments: cons.args})
	}
	return ci
}
