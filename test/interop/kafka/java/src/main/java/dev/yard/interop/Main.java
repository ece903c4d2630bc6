package dev.yard.interop;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;

import java.util.Map;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The seed scenario with Kafka's Java client:
 *   produce BOOTSTRAP TOPIC COUNT CODEC  -- keyed records PKG-<n>, JSON values, acks=all, idempotent
 *   consume BOOTSTRAP TOPIC COUNT        -- reads COUNT records from the beginning of every partition
 *   admin BOOTSTRAP TOPIC                -- the Admin client's topic life cycle, printing name=value facts
 *   txn BOOTSTRAP TOPIC                  -- a transactional producer commits, aborts and commits again,
 *                                           each transaction also committing an offset of partition 0
 *                                           for group TOPIC-group (its round's first number);
 *                                           read_committed and read_uncommitted consumers count what
 *                                           they see (name=value facts)
 * produce and consume print one line per record: partition TAB offset TAB key TAB value.
 * The consumer assigns partitions itself (no consumer group).
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "produce" -> produce(args[1], args[2], Integer.parseInt(args[3]), args[4]);
            case "consume" -> consume(args[1], args[2], Integer.parseInt(args[3]));
            case "admin" -> admin(args[1], args[2]);
            case "txn" -> txn(args[1], args[2]);
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    static void produce(String bootstrap, String topic, int count, String codec) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                String key = "PKG-" + (40000 + i % 10);
                String value = "{\"seq\":" + i + ",\"status\":\"SCANNED\",\"warehouse\":\"WH-042\",\"client\":\"java\"}";
                acks.add(producer.send(new ProducerRecord<>(topic, key, value)));
            }
            for (int i = 0; i < acks.size(); i++) {
                RecordMetadata md = acks.get(i).get();
                String key = "PKG-" + (40000 + i % 10);
                System.out.println(md.partition() + "\t" + md.offset() + "\t" + key + "\t" + i);
            }
        }
    }

    static void consume(String bootstrap, String topic, int count) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(topic, Duration.ofSeconds(30))) {
                parts.add(new TopicPartition(topic, p.partition()));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            int got = 0;
            long deadline = System.currentTimeMillis() + 60_000;
            while (got < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    System.out.println(r.partition() + "\t" + r.offset() + "\t" + r.key() + "\t" + r.value());
                    got++;
                }
            }
            if (got < count) {
                throw new IllegalStateException("consumed " + got + " of " + count + " records");
            }
        }
    }

    static void txn(String bootstrap, String topic) throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "java-txn");
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
            producer.initTransactions();
            String[][] rounds = {{"committed", "0"}, {"aborted", "0"}, {"committed", "5"}};
            for (String[] round : rounds) {
                producer.beginTransaction();
                for (int i = 0; i < 5; i++) {
                    int n = Integer.parseInt(round[1]) + i;
                    producer.send(new ProducerRecord<>(topic, "k" + n, round[0] + "-" + n));
                }
                long offset = Long.parseLong(round[1]) + (round[0].equals("aborted") ? 100 : 0);
                producer.sendOffsetsToTransaction(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(offset)),
                        new ConsumerGroupMetadata(topic + "-group"));
                if (round[0].equals("committed")) {
                    producer.commitTransaction();
                } else {
                    producer.flush();
                    producer.abortTransaction();
                }
            }
        }
        for (String level : new String[] {"read_committed", "read_uncommitted"}) {
            List<String> seen = readToEnd(bootstrap, topic, level);
            long aborted = seen.stream().filter(v -> v.startsWith("aborted")).count();
            System.out.println(level + ".records=" + seen.size());
            System.out.println(level + ".aborted=" + aborted);
        }
    }

    /** Reads every partition of topic from the beginning to its end offset at isolation level. */
    static List<String> readToEnd(String bootstrap, String topic, String level) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, level);
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(topic, Duration.ofSeconds(30))) {
                parts.add(new TopicPartition(topic, p.partition()));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            Map<TopicPartition, Long> end = consumer.endOffsets(parts);
            long deadline = System.currentTimeMillis() + 60_000;
            while (System.currentTimeMillis() < deadline) {
                boolean done = true;
                for (TopicPartition tp : parts) {
                    done &= consumer.position(tp) >= end.get(tp);
                }
                if (done) {
                    return out;
                }
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    out.add(r.value());
                }
            }
            throw new IllegalStateException(level + ": did not reach the end offsets " + end);
        }
    }

    static void admin(String bootstrap, String topic) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(props)) {
            admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1)
                    .configs(Map.of("retention.ms", "3600000")))).all().get();
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            System.out.println("partitions=" + d.partitions().size());
            System.out.println("topicIdSet=" + !d.topicId().equals(Uuid.ZERO_UUID));
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
            System.out.println("retention.ms=" + cfg.get("retention.ms").value());
            admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                    new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET)))).all().get();
            cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
            System.out.println("altered.retention.ms=" + cfg.get("retention.ms").value());
            admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
            d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            System.out.println("grown.partitions=" + d.partitions().size());
            TopicPartition tp0 = new TopicPartition(topic, 0);
            System.out.println("latest0=" + admin.listOffsets(Map.of(tp0, OffsetSpec.latest())).all().get().get(tp0).offset());
            System.out.println("nodes=" + admin.describeCluster().nodes().get().size());
            System.out.println("clusterIdSet=" + (admin.describeCluster().clusterId().get() != null));
            try {
                admin.createTopics(List.of(new NewTopic("bad name!", 1, (short) 1))).all().get();
                System.out.println("badName=accepted");
            } catch (java.util.concurrent.ExecutionException e) {
                System.out.println("badName=" + e.getCause().getClass().getSimpleName());
            }
            admin.deleteTopics(List.of(topic)).all().get();
            System.out.println("listedAfterDelete=" + admin.listTopics().names().get().contains(topic));
        }
    }
}
