"""kafka-python consumer-group member for the groups interop test (run by groups_test.go).

  group_consumer.py BOOTSTRAP TOPIC GROUP IDLE_SECONDS

Subscribes TOPIC as a member of GROUP (kafka-python's classic group protocol, range assignor),
reads from the earliest offset when the group has no commit, and commits synchronously after
each poll. Whenever it has read something, then seen nothing for IDLE_SECONDS, and holds other
partitions than at its last report, it prints (counts and keys are cumulative)
  ASSIGNED <comma-separated partitions>
  COUNT <records read>
  KEYS <key>=<comma-separated sequence numbers in reading order>;...
It keeps heartbeating until its stdin closes, then leaves the group.
"""
import sys
import threading
import time

from kafka import KafkaConsumer


def main():
    bootstrap, topic, group, idle = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=10000, heartbeat_interval_ms=1000,
                      client_id="kafka-python-" + group)
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    count, keys = 0, {}
    last = time.time()
    reported = None
    held = []
    deadline = time.time() + 120
    while not done.is_set() and time.time() < deadline:
        batch = c.poll(timeout_ms=300)
        now_held = sorted(tp.partition for tp in c.assignment())
        if now_held != held:  # idle time counts from the last change of partitions
            held, last = now_held, time.time()
        for records in batch.values():
            for r in records:
                keys.setdefault(r.key.decode(), []).append(r.value.decode())
                count += 1
        if batch:
            c.commit()
            last = time.time()
        elif count > 0 and c.assignment() and time.time() - last > idle:
            parts = sorted(tp.partition for tp in c.assignment())
            if parts != reported:
                print("ASSIGNED " + ",".join(str(p) for p in parts))
                print("COUNT %d" % count)
                print("KEYS " + ";".join("%s=%s" % (k, ",".join(v)) for k, v in sorted(keys.items())))
                sys.stdout.flush()
                reported = parts
    c.close()


if __name__ == "__main__":
    main()
