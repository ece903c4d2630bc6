"""pika against yard: stream queues over several partitions and x-stream-filter (issue 6).
Prints "OK <check>" per check and exits non-zero on the first failure.

Usage: stream_features.py host port
"""
import sys

import pika
import pika.exceptions

M32 = 0xFFFFFFFF


def check(name, cond, detail=""):
    if not cond:
        print("FAIL %s %s" % (name, detail), flush=True)
        sys.exit(1)
    print("OK " + name, flush=True)


def murmur2(data):
    """Kafka's key hash, written out here so that the partition yard picks is checked
    against an implementation independent of yard's."""
    m, h = 0x5BD1E995, (0x9747B28C ^ len(data)) & M32
    whole = len(data) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & M32
        k ^= k >> 24
        k = (k * m) & M32
        h = ((h * m) & M32) ^ k
    tail = data[whole:]
    if tail:
        for i in reversed(range(len(tail))):
            h ^= tail[i] << (8 * i)
        h = (h * m) & M32
    h ^= h >> 13
    h = (h * m) & M32
    h ^= h >> 15
    return h


def consume(ch, queue, n, arguments):
    ch.basic_qos(prefetch_count=10)
    got = []
    for method, props, body in ch.consume(queue, arguments=arguments, inactivity_timeout=30):
        if method is None:
            check("consume-%s" % arguments, False, "got %d of %d" % (len(got), n))
        ch.basic_ack(method.delivery_tag)
        got.append((method.routing_key, props.headers, body.decode()))
        if len(got) == n:
            break
    ch.cancel()
    return got


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    conn = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port))
    ch = conn.channel()
    ch.queue_declare("py.stream", durable=True,
                     arguments={"x-queue-type": "stream", "x-stream-partitions": 3})
    ch.exchange_declare("py.stream.fan", exchange_type="fanout")
    ch.queue_bind("py.stream", "py.stream.fan")
    ch.confirm_delivery()
    regions = ["emea", "apac", None]
    sent = []
    for i in range(30):
        key, region = "pkg-%d" % (i % 5), regions[i % 3]
        headers = {"x-stream-filter-value": region} if region else {}
        body = "%s/%d" % (key, i)
        ch.basic_publish("py.stream.fan", key, body.encode(), pika.BasicProperties(headers=headers))
        sent.append((key, region, body))

    got = consume(ch, "py.stream", 30, {"x-stream-offset": "first"})
    ends, order = {}, []
    for key, headers, body in got:
        part, off = headers["x-stream-partition"], headers["x-stream-offset"]
        check_ok = part == (murmur2(key.encode()) & 0x7FFFFFFF) % 3 and off == ends.get(part, 0)
        if not check_ok:
            check("multi-partition-keys", False, (key, part, off, ends))
        ends[part] = off + 1
        order.append(body)
    per_key_sent = {k: [b for kk, _, b in sent if kk == k] for k, _, _ in sent}
    per_key_got = {k: [b for kk, _, b in got if kk == k] for k, _, _ in sent}
    check("multi-partition-keys", per_key_sent == per_key_got and len(ends) == 3, per_key_got)

    emea = consume(ch, "py.stream", 10, {"x-stream-offset": "first", "x-stream-filter": "emea"})
    check("filter-exact", sorted(b for _, _, b in emea) == sorted(b for _, r, b in sent if r == "emea")
          and all(h["x-stream-filter-value"] == "emea" for _, h, _ in emea), emea)
    some = consume(ch, "py.stream", 20, {"x-stream-offset": "first", "x-stream-filter": ["apac"],
                                         "x-stream-match-unfiltered": True})
    check("filter-match-unfiltered", sorted(b for _, _, b in some) == sorted(b for _, r, b in sent if r != "emea"), some)

    ch.basic_qos(prefetch_count=10)
    try:
        ch.basic_consume("py.stream", lambda *a: None, arguments={"x-stream-offset": 2})
        conn.process_data_events(time_limit=5)
        check("numeric-offset-needs-partition", False, "accepted")
    except pika.exceptions.ChannelClosedByBroker as e:
        check("numeric-offset-needs-partition", e.reply_code == 406 and "x-stream-partition" in e.reply_text, e)
    ch = conn.channel()
    p1 = consume(ch, "py.stream", ends[1] - 1, {"x-stream-offset": 1, "x-stream-partition": 1})
    check("partition-offset", [h["x-stream-offset"] for _, h, _ in p1] == list(range(1, ends[1]))
          and all(h["x-stream-partition"] == 1 for _, h, _ in p1), p1)
    conn.close()


if __name__ == "__main__":
    main()
