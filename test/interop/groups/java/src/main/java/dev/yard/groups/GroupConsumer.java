package dev.yard.groups;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * A consumer-group member: GroupConsumer BOOTSTRAP TOPIC GROUP PROTOCOL IDLE_SECONDS, where
 * PROTOCOL is "classic" or "consumer" (KIP-848) and TOPIC "re:REGEX" subscribes with a
 * broker-side regular expression (KIP-848 only). It reads from the earliest offset when the
 * group has no commit and commits synchronously after each poll. Once it has seen nothing for
 * IDLE_SECONDS while holding partitions (with KIP-848 a member may find all records already
 * read by the member that joined first), it prints
 * ASSIGNED p,p,... / COUNT n / KEYS key=seq,seq;... and keeps polling until its stdin closes,
 * then closes (leaving the group).
 */
public final class GroupConsumer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], protocol = args[3];
        long idleMs = (long) (Double.parseDouble(args[4]) * 1000);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "java-" + protocol + "-" + group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        AtomicBoolean done = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) { }
            } catch (IOException e) {
                // stdin gone: stop
            }
            done.set(true);
        });
        stdin.setDaemon(true);
        stdin.start();
        Map<String, List<String>> keys = new TreeMap<>();
        int count = 0;
        long last = System.currentTimeMillis();
        boolean reported = false;
        Set<TopicPartition> held = Set.of();
        long deadline = System.currentTimeMillis() + 180_000;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            if (topic.startsWith("re:")) {
                // A broker-side regular expression (KIP-848 SubscribedTopicRegex).
                c.subscribe(new SubscriptionPattern(topic.substring(3)));
            } else {
                c.subscribe(List.of(topic));
            }
            while (!done.get() && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(300));
                if (!c.assignment().equals(held)) { // idle time counts from the last change
                    held = Set.copyOf(c.assignment());
                    last = System.currentTimeMillis();
                }
                for (ConsumerRecord<String, String> r : recs) {
                    keys.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
                    count++;
                }
                if (!recs.isEmpty()) {
                    c.commitSync();
                    last = System.currentTimeMillis();
                } else if (!reported && !c.assignment().isEmpty() && System.currentTimeMillis() - last > idleMs) {
                    System.out.println("ASSIGNED " + c.assignment().stream().map(tp -> tp.partition()).sorted()
                        .map(String::valueOf).collect(Collectors.joining(",")));
                    System.out.println("COUNT " + count);
                    System.out.println("KEYS " + keys.entrySet().stream()
                        .map(e -> e.getKey() + "=" + String.join(",", e.getValue())).collect(Collectors.joining(";")));
                    System.out.flush();
                    reported = true;
                }
            }
        }
    }
}
