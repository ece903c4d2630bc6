package admin

// /api/channels and /api/consumers from the AMQP front end's open channels, in RabbitMQ's
// shapes: a channel is named "peer -> local (number)" after its connection.

import (
	"net/http"
	"strconv"

	"github.com/yardmq/yard/internal/amqp"
)

// AMQPChannels is the AMQP front end's view of its channels (amqp.Server).
type AMQPChannels interface {
	Channels() int
	ChannelList() []amqp.ChannelInfo
}

// ChannelDetails names a channel and its connection, as RabbitMQ's channel_details.
type ChannelDetails struct {
	Name           string `json:"name"`
	Number         uint16 `json:"number"`
	ConnectionName string `json:"connection_name"`
	PeerHost       string `json:"peer_host"`
	User           string `json:"user"`
	Node           string `json:"node"`
}

// ConnectionDetails names a channel's connection, as RabbitMQ's connection_details.
type ConnectionDetails struct {
	Name     string `json:"name"`
	PeerHost string `json:"peer_host"`
}

// Channel is one open AMQP channel as /api/channels shows it.
type Channel struct {
	Name                   string            `json:"name"`
	Number                 uint16            `json:"number"`
	User                   string            `json:"user"`
	VHost                  string            `json:"vhost"`
	Node                   string            `json:"node"`
	State                  string            `json:"state"`
	ConnectionDetails      ConnectionDetails `json:"connection_details"`
	PrefetchCount          int               `json:"prefetch_count"`
	GlobalPrefetchCount    int               `json:"global_prefetch_count"`
	MessagesUnacknowledged int               `json:"messages_unacknowledged"`
	ConsumerCount          int               `json:"consumer_count"`
	// ConsumerDetails lists the channel's consumers; only GET /api/channels/{name} fills it
	// (as RabbitMQ's, whose listing leaves it out).
	ConsumerDetails []Consumer `json:"consumer_details,omitempty"`
}

// QueueRef names a queue, as a consumer's queue field.
type QueueRef struct {
	Name  string `json:"name"`
	VHost string `json:"vhost"`
}

// Consumer is one consumer as /api/consumers shows it.
type Consumer struct {
	ConsumerTag    string         `json:"consumer_tag"`
	Queue          QueueRef       `json:"queue"`
	ChannelDetails ChannelDetails `json:"channel_details"`
	AckRequired    bool           `json:"ack_required"`
	PrefetchCount  int            `json:"prefetch_count"`
	Exclusive      bool           `json:"exclusive"`
	Active         bool           `json:"active"`
	Arguments      map[string]any `json:"arguments"`
}

func (s *Server) channelList() []amqp.ChannelInfo {
	if s.cfg.AMQP == nil {
		return nil
	}
	return s.cfg.AMQP.ChannelList()
}

func (s *Server) listChannels(w http.ResponseWriter, _ *http.Request) {
	out := []Channel{}
	for _, c := range s.channelList() {
		out = append(out, s.channelJSON(c))
	}
	writeJSON(w, http.StatusOK, out)
}

// connectionChannels answers /api/connections/{name}/channels: the channels of one AMQP
// connection (a Kafka connection has none), 404 for a connection that is not open.
func (s *Server) connectionChannels(w http.ResponseWriter, r *http.Request) {
	ci, ok := s.findConnection(w, r)
	if !ok {
		return
	}
	out := []Channel{}
	for _, c := range s.channelList() {
		if c.Remote == ci.Remote && c.Local == ci.Local {
			out = append(out, s.channelJSON(c))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// getChannel answers /api/channels/{name}: one channel, named as the listing names it
// ("peer -> local (number)"), with its consumers in consumer_details.
func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) {
	name := pathValue(r, "name")
	for _, c := range s.channelList() {
		if channelName(c) != name {
			continue
		}
		ch := s.channelJSON(c)
		ch.ConsumerDetails = s.consumersOf(c)
		if ch.ConsumerDetails == nil {
			ch.ConsumerDetails = []Consumer{}
		}
		writeJSON(w, http.StatusOK, ch)
		return
	}
	notFound(w)
}

func (s *Server) channelJSON(c amqp.ChannelInfo) Channel {
	conn := c.Remote + " -> " + c.Local
	return Channel{Name: channelName(c), Number: c.Number, User: c.User, VHost: c.VHost, Node: s.cfg.Node, State: "running",
		ConnectionDetails: ConnectionDetails{Name: conn, PeerHost: c.Remote}, PrefetchCount: c.Prefetch,
		GlobalPrefetchCount: c.GlobalPrefetch, MessagesUnacknowledged: c.Unacked, ConsumerCount: len(c.Consumers)}
}

func channelName(c amqp.ChannelInfo) string {
	return c.Remote + " -> " + c.Local + " (" + strconv.Itoa(int(c.Number)) + ")"
}

// consumersOf describes the consumers of one channel.
func (s *Server) consumersOf(c amqp.ChannelInfo) []Consumer {
	cd := ChannelDetails{Name: channelName(c), Number: c.Number, ConnectionName: c.Remote + " -> " + c.Local,
		PeerHost: c.Remote, User: c.User, Node: s.cfg.Node}
	var out []Consumer
	for _, k := range c.Consumers {
		out = append(out, Consumer{ConsumerTag: k.Tag, Queue: QueueRef{Name: k.Queue, VHost: c.VHost}, ChannelDetails: cd,
			AckRequired: k.AckRequired, PrefetchCount: k.Prefetch, Exclusive: k.Exclusive, Active: true,
			Arguments: jsonArgs(k.Arguments)})
	}
	return out
}

// listConsumers answers /api/consumers and /api/consumers/{vhost}.
func (s *Server) listConsumers(w http.ResponseWriter, r *http.Request) {
	vh := pathValue(r, "vhost")
	if vh != "" && s.vhostOf(w, r) == nil {
		return
	}
	out := []Consumer{}
	for _, c := range s.channelList() {
		if vh != "" && c.VHost != vh {
			continue
		}
		out = append(out, s.consumersOf(c)...)
	}
	writeJSON(w, http.StatusOK, out)
}
