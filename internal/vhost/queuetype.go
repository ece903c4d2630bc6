package vhost

// Queue types (x-queue-type): classic (the default), stream (stream.go) and quorum.
//
// RabbitMQ's quorum queue is a queue replicated with Raft. yard is one node, so a quorum queue
// here is what a client can observe of one on a single node:
//   - it is always durable: declaring one non-durable, exclusive or auto-delete is refused
//     with RabbitMQ's 406 wording;
//   - every message is kept as if persistent, whatever its delivery mode, and a publisher
//     confirm waits for its fsync (RabbitMQ's quorum queues ignore delivery-mode too);
//   - the arguments RabbitMQ's quorum queues do not support are refused (x-max-priority,
//     x-queue-mode, x-queue-version: args.go; x-overflow=reject-publish-dlx);
//   - redeliveries are limited by default (x-delivery-limit 20, RabbitMQ 4's default), so a
//     poison message is dead-lettered (or dropped) instead of looping forever; redeliveries
//     carry x-delivery-count.
// Its storage is the durable queue store every durable classic queue uses.

const (
	queueTypeClassic = "classic"
	queueTypeQuorum  = "quorum"
	queueTypeStream  = "stream"
	// quorumDeliveryLimit is a quorum queue's x-delivery-limit when the declaration has none.
	quorumDeliveryLimit = int64(20)
)

// queueType returns a declaration's x-queue-type, "classic" when absent.
func queueType(args map[string]any) string {
	if s, ok := args["x-queue-type"].(string); ok {
		return s
	}
	return queueTypeClassic
}

// checkQueueType refuses what a queue of the declared type cannot be, before it exists.
func (v *VHost) checkQueueType(d QueueDeclaration) error {
	if arg, set := d.Args["x-queue-type"]; set {
		if r := checkString(arg, nil); r != "" {
			return v.invalidArg(&argError{"x-queue-type", r}, d.Name)
		}
		if s := arg.(string); s != queueTypeClassic && s != queueTypeQuorum && s != queueTypeStream {
			return v.invalidArg(&argError{"x-queue-type", `"unsupported queue type '` + s + `'"`}, d.Name)
		}
	}
	if queueType(d.Args) != queueTypeQuorum {
		return nil
	}
	if p := invalidProperty(d); p != "" {
		return refuse(ErrPrecondition, "invalid property '%s' for queue '%s' in vhost '%s'", p, d.Name, v.name)
	}
	for _, a := range queueArgs {
		if _, ok := d.Args[a.name]; ok && a.classic && !a.quorum {
			return refuse(ErrPrecondition, "invalid arg '%s' for queue '%s' in vhost '%s' of queue type quorum", a.name, d.Name, v.name)
		}
	}
	if d.Args["x-overflow"] == "reject-publish-dlx" {
		return refuse(ErrPrecondition, "invalid arg 'x-overflow' for queue '%s' in vhost '%s' of queue type quorum: reject-publish-dlx is not supported", d.Name, v.name)
	}
	return nil
}

// invalidProperty names what a quorum or stream queue cannot be, "" if nothing.
func invalidProperty(d QueueDeclaration) string {
	switch {
	case !d.Durable:
		return "non-durable"
	case d.Exclusive:
		return "exclusive-owner"
	case d.AutoDelete:
		return "auto-delete"
	}
	return ""
}

// withTypeDefaults returns a queue's arguments with its type's defaults filled in.
func withTypeDefaults(args map[string]any) map[string]any {
	if queueType(args) != queueTypeQuorum {
		return args
	}
	if _, ok := args["x-delivery-limit"]; ok {
		return args
	}
	out := make(map[string]any, len(args)+1)
	for k, v := range args {
		out[k] = v
	}
	out["x-delivery-limit"] = quorumDeliveryLimit
	return out
}

// defaultedArg reports whether argument k of a queue with arguments args is its type's
// default, which a redeclaration may leave out.
func defaultedArg(k string, current any, args map[string]any) bool {
	if k != "x-delivery-limit" || queueType(args) != queueTypeQuorum {
		return false
	}
	return sameArg(current, quorumDeliveryLimit)
}
