"""pika against yard: the connection-level behaviours pika's own tests expect of RabbitMQ.
Prints "OK <check>" per check and exits non-zero on the first failure.

  - server-version: server-properties carry a version and RabbitMQ's capabilities.
  - update-secret: connection.update-secret of a password user is accepted (RabbitMQ's
    internal backend does not check it) and the connection goes on.
  - auth-failure-close: pika announces authentication_failure_close, so a wrong password
    is answered with connection.close 403 ACCESS_REFUSED, not a silent close.
  - tx-ack-unknown: in a transaction an ack of an unknown tag closes the channel at once.

Usage: connection_features.py host port
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
    version = props.get("version")
    if isinstance(version, bytes):
        version = version.decode()
    caps = props.get("capabilities", {})
    check("server-version", version and version != "0.1.0" and caps.get("authentication_failure_close") is True
          and caps.get("publisher_confirms") is True, props)

    conn.update_secret("new secret", "rotation")
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    check("update-secret", q.startswith("amq.gen-"), q)

    ch.tx_select()
    try:
        ch.basic_ack(99)
        ch.queue_declare(q, passive=True)  # not tx.commit: the channel must be closed already
        check("tx-ack-unknown", False, "channel still open")
    except pika.exceptions.ChannelClosedByBroker as e:
        check("tx-ack-unknown", e.reply_code == 406 and e.reply_text == "PRECONDITION_FAILED - unknown delivery tag 99", e)
    conn.close()

    creds = pika.PlainCredentials("guest", "wrong")
    try:
        pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port, credentials=creds,
                                                          connection_attempts=1))
        check("auth-failure-close", False, "logged in with a wrong password")
    except pika.exceptions.AMQPConnectionError as e:  # the broker's close is in its text
        text = repr(e)
        check("auth-failure-close", "403" in text and "ACCESS_REFUSED" in text, text)


if __name__ == "__main__":
    main()
