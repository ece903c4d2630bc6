"""confluent-kafka (librdkafka 2.x) side of the interop suite, run by interop_test.go.

  admin BOOTSTRAP TOPIC -- the admin calls librdkafka's own tests found broken, one
                           "name=value" line each

DescribeTopics and DescribeCluster with authorized operations, DescribeConsumerGroups, the ACL
and SCRAM APIs (answered with an error, not a dropped connection), and a transactional
producer that commits a transaction.
"""
import sys

from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType)

TIMEOUT = 30


def ops(acl_ops):
    return ",".join(sorted(op.name for op in acl_ops)) if acl_ops is not None else "None"


def error_name(fn):
    try:
        fn()
        return "none"
    except KafkaException as e:
        return e.args[0].name()


def admin(bootstrap, topic):
    a = AdminClient({"bootstrap.servers": bootstrap})
    a.create_topics([NewTopic(topic, 2, 1)])[topic].result(TIMEOUT)

    d = a.describe_topics(TopicCollection([topic]), include_authorized_operations=True)[topic].result(TIMEOUT)
    print("topic.partitions=%d" % len(d.partitions))
    print("topic.ops=%s" % ops(d.authorized_operations))

    c = a.describe_cluster(include_authorized_operations=True).result(TIMEOUT)
    print("cluster.nodes=%d" % len(c.nodes))
    print("cluster.controller=%d" % c.controller.id)
    print("cluster.ops=%s" % ops(c.authorized_operations))

    g = a.describe_consumer_groups(["no-such-group"], include_authorized_operations=True)["no-such-group"].result(TIMEOUT)
    print("group.ops=%s" % ops(g.authorized_operations))

    f = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                         AclOperation.ANY, AclPermissionType.ANY)
    print("acls=%s" % error_name(lambda: a.describe_acls(f).result(TIMEOUT)))
    print("scram=%s" % error_name(lambda: [fu.result(TIMEOUT) for fu in a.describe_user_scram_credentials(["alice"]).values()]))

    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "interop-txn"})

    def txn():
        p.init_transactions(TIMEOUT)
        p.begin_transaction()
        p.produce(topic, b"in a transaction")
        p.commit_transaction(TIMEOUT)
    print("txn=%s" % error_name(txn))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "admin":
        admin(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown command " + cmd)
