package admin

// Publishing and getting messages over HTTP, as RabbitMQ's management plugin does it
// (rabbitmqadmin publish and get, the web console's "Publish message" and "Get messages"):
//
//	POST /api/exchanges/{vhost}/{name}/publish  {"routing_key", "properties", "payload", "payload_encoding"}
//	POST /api/queues/{vhost}/{name}/get         {"count", "ackmode", "encoding"[, "truncate"]}
//
// A publish goes through the vhost's one routing and delivery (vhost.Publish, which AMQP's
// basic.publish uses too) with mandatory set: {"routed": false} when no queue took it. It
// answers once the message is durable where it went, as RabbitMQ answers after the
// publisher confirm. A get takes up to count messages as basic.get does and then settles
// them by ackmode: ack_requeue_false (taken with no-ack), ack_requeue_true and
// reject_requeue_true (returned, marked redelivered), reject_requeue_false (dropped or
// dead-lettered).
//
// Authorisation is RabbitMQ's: a management tag and access to the vhost (a user without it
// gets 404, an administrator 401), then write permission on the exchange ("amq.default" for
// the default exchange) or read permission on the queue, refused with 401 and the AMQP
// channel's ACCESS_REFUSED text. Other refusals a channel would close with are 400 with
// "<code> <TEXT> - detail", as RabbitMQ words them.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// publishTimeout bounds the wait for a published message to be durable (RabbitMQ's
// management publish_timeout default).
const publishTimeout = 30 * time.Second

// getCountMax and getBytesMax bound what one get takes: the answer is built in memory. A
// get stops at the message that reaches getBytesMax, as if the queue had no more.
const (
	getCountMax = 10000
	getBytesMax = 64 << 20
)

func (s *Server) routeMessages() {
	s.mux.Handle("POST /api/exchanges/{vhost}/{name}/publish", s.authed(anyTag, s.publishMessage))
	s.mux.Handle("POST /api/queues/{vhost}/{name}/get", s.authed(anyTag, s.getMessages))
}

// vhostFor returns the request's vhost if u may use it, else writes RabbitMQ's refusal and
// returns nil: 404 for a vhost that does not exist or that a user who is not an
// administrator has no permissions in, 401 for an administrator without permissions in it.
func (s *Server) vhostFor(w http.ResponseWriter, r *http.Request, u auth.User) *vhost.VHost {
	v := s.vhostOf(w, r)
	if v == nil {
		return nil
	}
	if !s.cfg.Users.CanAccessVhost(u.Name, v.Name()) {
		if u.HasTag(auth.TagAdministrator) {
			writeError(w, http.StatusUnauthorized, "not_authorised", "Access refused.")
		} else {
			notFound(w)
		}
		return nil
	}
	return v
}

// permitted checks u's permission a on the named resource as an AMQP channel would, and
// writes RabbitMQ's 401 if refused.
func (s *Server) permitted(w http.ResponseWriter, u auth.User, v *vhost.VHost, a auth.Access, kind, name string) bool {
	if s.cfg.Users.Check(u.Name, v.Name(), a, name) {
		return true
	}
	writeError(w, http.StatusUnauthorized, "not_authorised",
		fmt.Sprintf("ACCESS_REFUSED - access to %s '%s' in vhost '%s' refused for user '%s'", kind, name, v.Name(), u.Name))
	return false
}

// channelRefusal answers a refusal an AMQP channel would close with, as RabbitMQ's
// management plugin maps its channel's close: NOT_FOUND is 404, ACCESS_REFUSED 401, any
// other code 400 with "<code> <TEXT> - detail".
func channelRefusal(w http.ResponseWriter, err error) {
	code, detail := amqpCode(err)
	text := wire.ReplyName(code) + " - " + detail
	switch code {
	case wire.NotFound:
		writeError(w, http.StatusNotFound, "not_found", text)
	case wire.AccessRefused:
		writeError(w, http.StatusUnauthorized, "not_authorised", text)
	default:
		badRequest(w, strconv.Itoa(int(code))+" "+text)
	}
}

// amqpCode is the AMQP reply code a domain refusal stands for, and its detail.
func amqpCode(err error) (uint16, string) {
	var ve *vhost.Error
	if !errors.As(err, &ve) {
		return wire.InternalError, err.Error()
	}
	for _, k := range []struct {
		kind error
		code uint16
	}{{vhost.ErrAccessRefused, wire.AccessRefused}, {vhost.ErrNotFound, wire.NotFound},
		{vhost.ErrLocked, wire.ResourceLocked}, {vhost.ErrPrecondition, wire.PreconditionFailed},
		{vhost.ErrInvalid, wire.CommandInvalid}} {
		if ve.Kind == k.kind {
			return k.code, ve.Detail
		}
	}
	return wire.InternalError, ve.Detail
}

// decodeKeys decodes a JSON object body (numbers kept exact) and checks that every key of
// keys is there, as RabbitMQ's with_decode: a missing one is 400 "[{key_missing,name}]".
func decodeKeys(w http.ResponseWriter, r *http.Request, keys ...string) (map[string]any, bool) {
	body := map[string]any{}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil && err.Error() != "EOF" {
		badRequest(w, "cannot decode the request body as a JSON object: "+err.Error())
		return nil, false
	}
	var missing []string
	for _, k := range keys {
		if _, ok := body[k]; !ok {
			missing = append(missing, "{key_missing,"+k+"}")
		}
	}
	if len(missing) > 0 {
		badRequest(w, "["+strings.Join(missing, ",")+"]")
		return nil, false
	}
	return body, true
}

func (s *Server) publishMessage(w http.ResponseWriter, r *http.Request, u auth.User) {
	v := s.vhostFor(w, r, u)
	if v == nil {
		return
	}
	name := pathValue(r, "name")
	exchange := name
	if name == "amq.default" {
		exchange = ""
	} else if _, err := v.LookupExchange(name); err != nil {
		notFound(w)
		return
	}
	body, ok := decodeKeys(w, r, "routing_key", "properties", "payload", "payload_encoding")
	if !ok {
		return
	}
	key, ok := body["routing_key"].(string)
	if !ok {
		badRequest(w, "{not_string,routing_key}")
		return
	}
	payload, ok := body["payload"].(string)
	if !ok {
		badRequest(w, "payload_not_string")
		return
	}
	var data []byte
	switch enc, _ := body["payload_encoding"].(string); enc {
	case "string":
		data = []byte(payload)
	case "base64":
		b, err := base64.StdEncoding.DecodeString(payload)
		if err != nil {
			badRequest(w, "{not_base64,payload}: "+err.Error())
			return
		}
		data = b
	default:
		badRequest(w, fmt.Sprintf("{unsupported_encoding,%v}", body["payload_encoding"]))
		return
	}
	props, reason := basicProperties(body["properties"])
	if reason != "" {
		badRequest(w, reason)
		return
	}
	if !s.permitted(w, u, v, auth.Write, "exchange", name) {
		return
	}
	// The checks basic.publish makes of the message itself (internal/amqp: access.go,
	// publish.go, sender.go, replyto.go), with the domain's rules.
	refuse := func(format string, args ...any) {
		badRequest(w, fmt.Sprintf("406 PRECONDITION_FAILED - "+format, args...))
	}
	if props.Flags&wire.FlagBasicUserId != 0 && props.UserId != u.Name {
		refuse("user_id property set to '%s' but authenticated user was '%s'", props.UserId, u.Name)
		return
	}
	if props.Flags&wire.FlagBasicReplyTo != 0 && props.ReplyTo == "amq.rabbitmq.reply-to" {
		refuse("fast reply consumer does not exist")
		return
	}
	if props.Flags&wire.FlagBasicExpiration != 0 {
		if err := vhost.CheckExpiration(props.Expiration); err != nil {
			channelRefusal(w, err)
			return
		}
	}
	extra, bcc, err := vhost.SenderRoutes(props.Headers)
	if err != nil {
		channelRefusal(w, err)
		return
	}
	if bcc {
		delete(props.Headers, "BCC")
	}
	var router vhost.Router
	router.Failed = func(q string, stream bool, err error) {
		s.rl.Warn("cannot enqueue message", "cannot enqueue message published over HTTP", "queue", q, "vhost", v.Name(), "err", err)
	}
	res, err := v.Publish(&router, &vhost.Publishing{Exchange: exchange, RoutingKey: key, Extra: extra,
		Headers: headerMap(props.Headers), Properties: props.AppendTo(nil), Body: data, Persistent: props.DeliveryMode == 2})
	if err != nil {
		channelRefusal(w, err)
		return
	}
	if res.Failed {
		badRequest(w, "rejected Unable to publish message. Check queue limits.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	for _, wt := range res.Waits {
		if err := wt.Wait(ctx); err != nil {
			badRequest(w, "confirm_timeout Timed out waiting for a publisher confirm. The message may still have been enqueued. Check the health of the queues bound to this exchange.")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]bool{"routed": res.Queues > 0})
}

// headerMap is the message's headers for a headers exchange.
type headerMap map[string]any

func (h headerMap) Headers() map[string]any { return h }

// basicProperties converts the JSON "properties" of a publish to AMQP basic properties as
// RabbitMQ's to_basic_properties: the string properties must be strings, delivery_mode,
// priority and timestamp integers, headers an object (its values become AMQP field values:
// strings, longs, doubles, booleans, arrays and tables; null is refused). Unknown keys are
// ignored; an empty array stands for no properties (what a get answers for a message
// without any). reason is RabbitMQ's error term when a value is refused.
func basicProperties(in any) (p wire.BasicProperties, reason string) {
	m, ok := in.(map[string]any)
	if !ok {
		if a, isArr := in.([]any); isArr && len(a) == 0 {
			return p, ""
		}
		return p, "{not_object,properties}"
	}
	strs := []struct {
		key  string
		flag uint16
		dst  *string
	}{
		{"content_type", wire.FlagBasicContentType, &p.ContentType},
		{"content_encoding", wire.FlagBasicContentEncoding, &p.ContentEncoding},
		{"correlation_id", wire.FlagBasicCorrelationId, &p.CorrelationId},
		{"reply_to", wire.FlagBasicReplyTo, &p.ReplyTo},
		{"expiration", wire.FlagBasicExpiration, &p.Expiration},
		{"message_id", wire.FlagBasicMessageId, &p.MessageId},
		{"type", wire.FlagBasicType, &p.Type},
		{"user_id", wire.FlagBasicUserId, &p.UserId},
		{"app_id", wire.FlagBasicAppId, &p.AppId},
		{"cluster_id", wire.FlagBasicClusterId, &p.ClusterId},
	}
	for _, f := range strs {
		v, ok := m[f.key]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return p, "{not_string," + f.key + "}"
		}
		*f.dst = s
		p.Flags |= f.flag
	}
	ints := []struct {
		key  string
		flag uint16
		max  uint64
	}{
		{"delivery_mode", wire.FlagBasicDeliveryMode, math.MaxUint8},
		{"priority", wire.FlagBasicPriority, math.MaxUint8},
		{"timestamp", wire.FlagBasicTimestamp, math.MaxInt64},
	}
	for _, f := range ints {
		v, ok := m[f.key]
		if !ok || v == nil {
			continue
		}
		num, _ := v.(json.Number)
		n, err := strconv.ParseUint(num.String(), 10, 64)
		if err != nil || n > f.max {
			return p, "{not_int," + f.key + "}"
		}
		switch f.key {
		case "delivery_mode":
			p.DeliveryMode = uint8(n)
		case "priority":
			p.Priority = uint8(n)
		default:
			p.Timestamp = n
		}
		p.Flags |= f.flag
	}
	if h, ok := m["headers"]; ok && h != nil {
		t, reason := headersTable(h)
		if reason != "" {
			return p, reason
		}
		if t != nil {
			p.Headers = t
			p.Flags |= wire.FlagBasicHeaders
		}
	}
	return p, ""
}

// headersTable converts a JSON headers object to a field table (nil for an empty one).
func headersTable(in any) (wire.Table, string) {
	m, ok := in.(map[string]any)
	if !ok {
		if a, isArr := in.([]any); isArr && len(a) == 0 {
			return nil, ""
		}
		return nil, "{not_object,headers}"
	}
	if len(m) == 0 {
		return nil, ""
	}
	t := make(wire.Table, len(m))
	for k, v := range m {
		fv, reason := fieldValue(v)
		if reason != "" {
			return nil, reason
		}
		t[k] = fv
	}
	return t, ""
}

// fieldValue is RabbitMQ's type_val: a JSON value as an AMQP field value.
func fieldValue(v any) (any, string) {
	switch x := v.(type) {
	case nil:
		return nil, "null_not_allowed"
	case string, bool:
		return x, ""
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, ""
		}
		f, err := x.Float64()
		if err != nil {
			return nil, "{unhandled_type," + x.String() + "}"
		}
		return f, ""
	case []any:
		out := make([]any, len(x))
		for i := range x {
			fv, reason := fieldValue(x[i])
			if reason != "" {
				return nil, reason
			}
			out[i] = fv
		}
		return out, ""
	case map[string]any:
		t := make(wire.Table, len(x))
		for k, e := range x {
			fv, reason := fieldValue(e)
			if reason != "" {
				return nil, reason
			}
			t[k] = fv
		}
		return t, ""
	}
	return nil, fmt.Sprintf("{unhandled_type,%v}", v)
}

// ackModes are get's ackmode values: whether the messages are taken with no-ack, and how
// the others are settled afterwards.
var ackModes = map[string]struct {
	noAck   bool
	requeue bool
}{
	"ack_requeue_false":    {noAck: true},
	"ack_requeue_true":     {requeue: true},
	"reject_requeue_true":  {requeue: true},
	"reject_requeue_false": {},
}

// gotMessage is one message of a get's answer, in RabbitMQ's shape and order.
type gotMessage struct {
	PayloadBytes    int    `json:"payload_bytes"`
	Redelivered     bool   `json:"redelivered"`
	Exchange        string `json:"exchange"`
	RoutingKey      string `json:"routing_key"`
	MessageCount    int    `json:"message_count"`
	Properties      any    `json:"properties"`
	Payload         string `json:"payload"`
	PayloadEncoding string `json:"payload_encoding"`
}

// intParam is RabbitMQ's parse_int: an integer, a number (truncated) or a string of digits.
func intParam(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, true
		}
		if f, err := x.Float64(); err == nil && math.Abs(f) < math.MaxInt64 {
			return int64(f), true
		}
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

func (s *Server) getMessages(w http.ResponseWriter, r *http.Request, u auth.User) {
	v := s.vhostFor(w, r, u)
	if v == nil {
		return
	}
	name := pathValue(r, "name")
	if v.Queue(name) == nil {
		notFound(w)
		return
	}
	body, ok := decodeKeys(w, r, "ackmode", "count", "encoding")
	if !ok {
		return
	}
	modeName, _ := body["ackmode"].(string)
	mode, ok := ackModes[modeName]
	if !ok {
		badRequest(w, fmt.Sprintf("Invalid ackmode value: %v. Valid values are: ack_requeue_true, ack_requeue_false, reject_requeue_true, reject_requeue_false", body["ackmode"]))
		return
	}
	count, ok := intParam(body["count"])
	if !ok || count < 0 || count > getCountMax {
		badRequest(w, fmt.Sprintf("{not_integer,%v}: count must be an integer from 0 to %d", body["count"], getCountMax))
		return
	}
	enc, _ := body["encoding"].(string)
	if enc != "auto" && enc != "base64" {
		badRequest(w, "Unsupported encoding. Please use auto or base64.")
		return
	}
	truncate := int64(-1)
	if t, ok := body["truncate"]; ok && t != nil {
		if truncate, ok = intParam(t); !ok || truncate < 0 {
			badRequest(w, fmt.Sprintf("{not_integer,%v}: truncate must be an integer from 0", t))
			return
		}
	}
	if !s.permitted(w, u, v, auth.Read, "queue", name) {
		return
	}
	qs, err := v.LookupQueue(name, nil)
	if err != nil {
		channelRefusal(w, err)
		return
	}
	// As AMQP's basic.get (internal/amqp/ack.go).
	if qs.Stream != nil {
		badRequest(w, fmt.Sprintf("540 NOT_IMPLEMENTED - basic.get is not supported by stream queue '%s' in vhost '%s': consume with x-stream-offset", name, v.Name()))
		return
	}
	if qs.Replicated {
		badRequest(w, fmt.Sprintf("540 NOT_IMPLEMENTED - basic.get is not supported by replicated quorum queue '%s' in vhost '%s' yet: consume", name, v.Name()))
		return
	}
	out := []gotMessage{}
	var ids []uint64
	size := 0
	for range count {
		if size >= getBytesMax {
			break
		}
		d, remaining, ok, err := qs.Queue.Get(mode.noAck)
		if err != nil || !ok {
			break
		}
		if !mode.noAck {
			ids = append(ids, d.ID)
		}
		g := gotJSON(d, remaining, enc, truncate)
		size += len(g.Payload)
		out = append(out, g)
	}
	// Settled once all are taken, as RabbitMQ: a message returned at once would be got again.
	switch {
	case len(ids) == 0:
	case mode.requeue:
		qs.Queue.Requeue(ids...)
	default:
		qs.Queue.Drop(ids...)
	}
	writeJSON(w, http.StatusOK, out)
}

// gotJSON is a delivery as a get answers it. The payload is cut to truncate bytes (unless
// negative), then sent as text if encoding is "auto" and it is UTF-8, else in base64.
func gotJSON(d queue.Delivery, remaining int, encoding string, truncate int64) gotMessage {
	m := d.Message
	var props wire.BasicProperties
	_ = props.Decode(m.Properties) // what decoded before a fault, as the AMQP front end sends
	// x-delivery-count on a message returned before, as AMQP's basic.get writes it
	// (internal/amqp/codec.go withDeliveryCount).
	if d.DeliveryCount > 0 {
		if props.Headers == nil {
			props.Headers = wire.Table{}
		}
		props.Headers["x-delivery-count"] = int64(d.DeliveryCount)
		props.Flags |= wire.FlagBasicHeaders
	}
	payload := m.Body
	if truncate >= 0 && int64(len(payload)) > truncate {
		payload = payload[:truncate]
	}
	g := gotMessage{PayloadBytes: len(m.Body), Redelivered: d.Redelivered, Exchange: m.Exchange,
		RoutingKey: m.RoutingKey, MessageCount: remaining, Properties: propertiesJSON(&props)}
	if encoding == "auto" && utf8.Valid(payload) {
		g.Payload, g.PayloadEncoding = string(payload), "string"
	} else {
		g.Payload, g.PayloadEncoding = base64.StdEncoding.EncodeToString(payload), "base64"
	}
	return g
}

// propertiesJSON is RabbitMQ's basic_properties: the properties present, by their names,
// headers as JSON values; [] when there are none (RabbitMQ's empty list).
func propertiesJSON(p *wire.BasicProperties) any {
	out := map[string]any{}
	strs := []struct {
		key  string
		flag uint16
		val  string
	}{
		{"content_type", wire.FlagBasicContentType, p.ContentType},
		{"content_encoding", wire.FlagBasicContentEncoding, p.ContentEncoding},
		{"correlation_id", wire.FlagBasicCorrelationId, p.CorrelationId},
		{"reply_to", wire.FlagBasicReplyTo, p.ReplyTo},
		{"expiration", wire.FlagBasicExpiration, p.Expiration},
		{"message_id", wire.FlagBasicMessageId, p.MessageId},
		{"type", wire.FlagBasicType, p.Type},
		{"user_id", wire.FlagBasicUserId, p.UserId},
		{"app_id", wire.FlagBasicAppId, p.AppId},
		{"cluster_id", wire.FlagBasicClusterId, p.ClusterId},
	}
	for _, f := range strs {
		if p.Flags&f.flag != 0 {
			out[f.key] = utf8Safe([]byte(f.val))
		}
	}
	if p.Flags&wire.FlagBasicDeliveryMode != 0 {
		out["delivery_mode"] = p.DeliveryMode
	}
	if p.Flags&wire.FlagBasicPriority != 0 {
		out["priority"] = p.Priority
	}
	if p.Flags&wire.FlagBasicTimestamp != 0 {
		out["timestamp"] = p.Timestamp
	}
	if p.Flags&wire.FlagBasicHeaders != 0 {
		out["headers"] = tableJSON(p.Headers)
	}
	if len(out) == 0 {
		return []any{}
	}
	return out
}

// tableJSON is RabbitMQ's amqp_table: a field table as JSON values (text that is not UTF-8
// as "Not UTF-8, base64 is: ...", timestamps as seconds, decimals as numbers).
func tableJSON(t map[string]any) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = valueJSON(v)
	}
	return out
}

func valueJSON(v any) any {
	switch x := v.(type) {
	case string:
		return utf8Safe([]byte(x))
	case []byte:
		return utf8Safe(x)
	case map[string]any:
		return tableJSON(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = valueJSON(x[i])
		}
		return out
	case time.Time:
		return x.Unix()
	case wire.Decimal:
		return float64(x.Value) / math.Pow10(int(x.Scale))
	case float32:
		return finite(float64(x))
	case float64:
		return finite(x)
	}
	return v
}

// finite is f, or its text if JSON cannot carry it (NaN, infinities).
func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// utf8Safe is RabbitMQ's utf8_safe: text as it is if it is UTF-8, else its base64.
func utf8Safe(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return "Not UTF-8, base64 is: " + base64.StdEncoding.EncodeToString(b)
}
