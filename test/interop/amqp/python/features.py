"""pika against yard: exchanges of every type, publisher confirms, mandatory returns,
basic.get, nack/requeue, transactions and a channel error. Prints "OK <check>" per check and
exits non-zero on the first failure.

Usage: features.py host port
"""
import sys

import pika
import pika.exceptions


def check(name, cond, detail=""):
    if not cond:
        print("FAIL %s %s" % (name, detail), flush=True)
        sys.exit(1)
    print("OK " + name, flush=True)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    conn = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port))
    props = conn._impl.server_properties
    check("server-product", props.get("product") in ("yard", b"yard"), props)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("py.topic", exchange_type="topic")
    q = ch.queue_declare("", exclusive=True).method.queue
    check("server-named", q.startswith("amq.gen-"), q)
    ch.queue_bind(q, "py.topic", routing_key="truck.*.eu")
    ch.basic_publish("py.topic", "truck.7.eu", b"hello", pika.BasicProperties(headers={"n": 1}, delivery_mode=2))
    method, header, body = ch.basic_get(q, auto_ack=False)
    check("topic-route", body == b"hello" and header.headers == {"n": 1}, (body, header))
    ch.basic_nack(method.delivery_tag, requeue=True)
    method, header, body = ch.basic_get(q, auto_ack=False)
    check("requeue-redelivered", body == b"hello" and method.redelivered, method)
    ch.basic_ack(method.delivery_tag)
    check("get-empty", ch.basic_get(q)[0] is None)
    try:
        ch.basic_publish("amq.direct", "nobody", b"x", mandatory=True)
        check("mandatory-return", False, "no UnroutableError")
    except pika.exceptions.UnroutableError:
        check("mandatory-return", True)
    tx = conn.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"in-tx")
    tx.tx_rollback()
    tx.basic_publish("", q, b"committed")
    tx.tx_commit()
    method, header, body = ch.basic_get(q, auto_ack=True)
    check("tx", body == b"committed", body)
    bad = conn.channel()
    try:
        bad.queue_declare("no-such-queue", passive=True)
        check("passive-404", False)
    except pika.exceptions.ChannelClosedByBroker as e:
        check("passive-404", e.reply_code == 404 and "no queue 'no-such-queue'" in e.reply_text, e)
    conn.close()


if __name__ == "__main__":
    main()
