"""The seed's route-dispatch driver written with pika, for yard's interop tests.

Usage: driver.py host port mode, mode "work" or "hold" (see java/.../Driver.java: same
protocol). Prints READY, "GOT route redelivered", "ACK route", "NACK route".
"""
import sys

import pika


def say(line):
    print(line, flush=True)


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    conn = pika.BlockingConnection(pika.ConnectionParameters(host=host, port=port))
    ch = conn.channel()
    ch.queue_declare(queue="route-dispatch", durable=True)
    ch.basic_qos(prefetch_count=1)

    def on_message(channel, method, properties, body):
        route = body.decode()
        say("GOT %s %s" % (route, "true" if method.redelivered else "false"))
        if mode == "hold":
            return
        if route.startswith("nack-once") and not method.redelivered:
            channel.basic_nack(delivery_tag=method.delivery_tag, multiple=False, requeue=True)
            say("NACK " + route)
            return
        channel.basic_ack(delivery_tag=method.delivery_tag)
        say("ACK " + route)

    ch.basic_consume(queue="route-dispatch", on_message_callback=on_message, auto_ack=False)
    say("READY")
    ch.start_consuming()


if __name__ == "__main__":
    main()
