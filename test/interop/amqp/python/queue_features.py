"""pika against yard: RabbitMQ's queue arguments (issue 6) -- TTL with dead-lettering and the
x-death header, max-length with drop-head and reject-publish, delivery limit, single active
consumer, priorities. Prints "OK <check>" per check and exits non-zero on the first failure.

Usage: queue_features.py host port
"""
import sys
import time

import pika
import pika.exceptions


def check(name, cond, detail=""):
    if not cond:
        print("FAIL %s %s" % (name, detail), flush=True)
        sys.exit(1)
    print("OK " + name, flush=True)


def wait_get(ch, queue):
    deadline = time.time() + 10
    while time.time() < deadline:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            return props, body
        time.sleep(0.01)
    check("arrived-in-" + queue, False)


def dead_letter_setup(ch, src, args):
    ch.exchange_declare("py.dlx." + src, exchange_type="fanout", auto_delete=True)
    ch.queue_declare("py.dead." + src)
    ch.queue_bind("py.dead." + src, "py.dlx." + src)
    args = dict(args, **{"x-dead-letter-exchange": "py.dlx." + src})
    ch.queue_declare(src, arguments=args)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    conn = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port))
    ch = conn.channel()

    dead_letter_setup(ch, "py.ttl", {"x-message-ttl": 20})
    ch.basic_publish("", "py.ttl", b"stale")
    props, body = wait_get(ch, "py.dead.py.ttl")
    death = (props.headers or {}).get("x-death", [{}])[0]
    check("ttl-dead-lettered", body == b"stale" and death.get("reason") == "expired"
          and death.get("queue") == "py.ttl" and death.get("count") == 1, props.headers)

    dead_letter_setup(ch, "py.max", {"x-max-length": 1})
    ch.basic_publish("", "py.max", b"first")
    ch.basic_publish("", "py.max", b"second")
    props, body = wait_get(ch, "py.dead.py.max")
    check("drop-head-maxlen", body == b"first" and props.headers["x-death"][0]["reason"] == "maxlen", props.headers)

    dead_letter_setup(ch, "py.limit", {"x-delivery-limit": 0})
    ch.basic_publish("", "py.limit", b"poison")
    method, _, _ = ch.basic_get("py.limit")
    ch.basic_nack(method.delivery_tag, requeue=True)
    props, body = wait_get(ch, "py.dead.py.limit")
    check("delivery-limit", body == b"poison" and props.headers["x-death"][0]["reason"] == "delivery_limit", props.headers)

    ch.queue_declare("py.prio", arguments={"x-max-priority": 5})
    for p in (1, 4, 2):
        ch.basic_publish("", "py.prio", str(p).encode(), pika.BasicProperties(priority=p))
    order = [wait_get(ch, "py.prio")[1] for _ in range(3)]
    check("priority-order", order == [b"4", b"2", b"1"], order)

    ch.queue_declare("py.sac", arguments={"x-single-active-consumer": True})
    got = {"a": 0, "b": 0}
    ch.basic_consume("py.sac", lambda c, m, p, b: got.__setitem__("a", got["a"] + 1), auto_ack=True, consumer_tag="a")
    ch.basic_consume("py.sac", lambda c, m, p, b: got.__setitem__("b", got["b"] + 1), auto_ack=True, consumer_tag="b")
    for i in range(4):
        ch.basic_publish("", "py.sac", b"x")
    deadline = time.time() + 10
    while got["a"] + got["b"] < 4 and time.time() < deadline:
        conn.process_data_events(time_limit=0.05)
    check("single-active-consumer", got == {"a": 4, "b": 0}, got)

    ch.confirm_delivery()
    ch.queue_declare("py.rp", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.basic_publish("", "py.rp", b"fits")
    try:
        ch.basic_publish("", "py.rp", b"rejected")
        check("reject-publish-nack", False, "second publish was confirmed")
    except pika.exceptions.NackError:
        check("reject-publish-nack", True)
    conn.close()


if __name__ == "__main__":
    main()
