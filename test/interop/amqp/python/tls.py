"""pika over TLS against yard's --amqps-listen. Prints "OK <check>" per check and exits
non-zero on the first failure.

  - tls-publish-get: PLAIN with the right password over TLS (only the test's CA trusted, the
    server's name checked): declare, publish, get back.
  - tls-wrong-password: a wrong password is refused with connection.close 403 ACCESS_REFUSED.
  - external: with a client certificate (mTLS) and ExternalCredentials, EXTERNAL logs in as
    the certificate's CN.
  - external-needs-cert: without a certificate EXTERNAL is not offered, so pika cannot log in.

Usage: tls.py host port ca.pem user password client.pem client.key
"""
import ssl
import sys

import pika
import pika.credentials
import pika.exceptions


def check(name, cond, detail=""):
    if not cond:
        print("FAIL %s %s" % (name, detail), flush=True)
        sys.exit(1)
    print("OK " + name, flush=True)


def params(host, port, ca, creds, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return pika.ConnectionParameters(host=host, port=port, credentials=creds, connection_attempts=1,
                                     ssl_options=pika.SSLOptions(ctx, server_hostname=host))


def round_trip(conn, queue):
    ch = conn.channel()
    ch.queue_declare(queue, exclusive=True)
    ch.basic_publish("", queue, b"over tls")
    _, _, body = ch.basic_get(queue, auto_ack=True)
    return body


def main():
    host, port, ca, user, password, cert, key = sys.argv[1], int(sys.argv[2]), *sys.argv[3:8]
    conn = pika.BlockingConnection(params(host, port, ca, pika.PlainCredentials(user, password)))
    check("tls-publish-get", round_trip(conn, "pika-tls") == b"over tls")
    conn.close()

    try:
        pika.BlockingConnection(params(host, port, ca, pika.PlainCredentials(user, "wrong")))
        check("tls-wrong-password", False, "logged in with a wrong password")
    except pika.exceptions.AMQPConnectionError as e:
        text = repr(e)
        check("tls-wrong-password", "403" in text and "ACCESS_REFUSED" in text, text)

    conn = pika.BlockingConnection(params(host, port, ca, pika.credentials.ExternalCredentials(), cert, key))
    check("external", round_trip(conn, "pika-external") == b"over tls")
    conn.close()

    try:
        pika.BlockingConnection(params(host, port, ca, pika.credentials.ExternalCredentials()))
        check("external-needs-cert", False, "EXTERNAL logged in without a certificate")
    except pika.exceptions.AMQPConnectionError as e:
        check("external-needs-cert", True, repr(e))


if __name__ == "__main__":
    main()
