"""kafka-python side of the interop suite (run by interop_test.go with the venv setup.sh made).

  produce BOOTSTRAP TOPIC COUNT CODEC  -- keyed records PKG-<n>, JSON values, acks=all
  consume BOOTSTRAP TOPIC COUNT        -- COUNT records from the beginning of every partition
  sasl BOOTSTRAP TOPIC MECH USER PASS  -- one record over SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256/512);
                                          exits 2 printing "AUTH-FAILED <error>" when refused

Both print one line per record: partition TAB offset TAB key TAB value (produce prints the
sequence number as the value). The consumer assigns partitions itself (no consumer group).
"""
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def produce(bootstrap, topic, count, codec):
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all",
                      compression_type=None if codec == "none" else codec,
                      linger_ms=5)
    futures = []
    for i in range(count):
        key = "PKG-%d" % (40000 + i % 10)
        value = json.dumps({"seq": i, "status": "SCANNED", "client": "kafka-python"}, separators=(",", ":"))
        futures.append((key, i, p.send(topic, key=key.encode(), value=value.encode())))
    for key, i, f in futures:
        md = f.get(timeout=60)
        print("%d\t%d\t%s\t%d" % (md.partition, md.offset, key, i))
    p.close()


def sasl(bootstrap, topic, mech, user, password):
    try:
        p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", security_protocol="SASL_PLAINTEXT",
                          sasl_mechanism=mech, sasl_plain_username=user, sasl_plain_password=password,
                          max_block_ms=20000)
        md = p.send(topic, key=b"k", value=b"v").get(timeout=30)
        print("%d\t%d\tk\tv" % (md.partition, md.offset))
        p.close()
    except Exception as e:  # kafka-python raises KafkaError subclasses, or its timeout
        print("AUTH-FAILED %r" % (e,))
        sys.exit(2)


def consume(bootstrap, topic, count):
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      auto_offset_reset="earliest", group_id=None)
    deadline = time.time() + 30
    parts = None
    while not parts and time.time() < deadline:
        parts = c.partitions_for_topic(topic)
        if not parts:
            time.sleep(0.2)
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got = 0
    deadline = time.time() + 60
    while got < count and time.time() < deadline:
        for tp, records in c.poll(timeout_ms=500).items():
            for r in records:
                print("%d\t%d\t%s\t%s" % (r.partition, r.offset, r.key.decode(), r.value.decode()))
                got += 1
    c.close()
    if got < count:
        sys.exit("consumed %d of %d records" % (got, count))


if __name__ == "__main__":
    if sys.argv[1] == "sasl":
        sasl(*sys.argv[2:7])
        sys.exit(0)
    mode, bootstrap, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "produce":
        produce(bootstrap, topic, count, sys.argv[5])
    elif mode == "consume":
        consume(bootstrap, topic, count)
    else:
        sys.exit("unknown mode " + mode)
