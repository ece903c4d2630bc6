package dev.yard.interop;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.SaslAuthenticationException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Kafka's Java client over SASL_SSL:
 *   SaslSsl BOOTSTRAP MECHANISM USER PASSWORD CA_PEM TOPIC
 * trusts only the CA in CA_PEM (a PEM truststore; the broker's name is verified), creates
 * TOPIC with the Admin client, produces 10 records (acks=all, idempotent) and reads them
 * back. Prints "OK produced=10 consumed=10", or "AUTH-FAILED message" (exit 2) when the
 * broker refuses the credentials.
 */
public final class SaslSsl {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], mechanism = args[1], user = args[2], pass = args[3], ca = args[4], topic = args[5];
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", "SASL_SSL");
        p.put("sasl.mechanism", mechanism);
        String module = mechanism.equals("PLAIN")
            ? "org.apache.kafka.common.security.plain.PlainLoginModule"
            : "org.apache.kafka.common.security.scram.ScramLoginModule";
        p.put("sasl.jaas.config", module + " required username=\"" + user + "\" password=\"" + pass + "\";");
        p.put("ssl.truststore.type", "PEM");
        p.put("ssl.truststore.location", ca);
        p.put("default.api.timeout.ms", "30000");
        p.put("request.timeout.ms", "15000");
        try {
            run(p, topic);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof SaslAuthenticationException) {
                System.out.println("AUTH-FAILED " + e.getCause().getMessage());
                System.exit(2);
            }
            throw e;
        } catch (SaslAuthenticationException e) {
            System.out.println("AUTH-FAILED " + e.getMessage());
            System.exit(2);
        }
    }

    static void run(Properties base, String topic) throws Exception {
        try (Admin admin = Admin.create(base)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
        }
        Properties pp = new Properties();
        pp.putAll(base);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        pp.put("acks", "all");
        pp.put("enable.idempotence", "true");
        pp.put("max.block.ms", "30000");
        int produced = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, "PKG-" + (40000 + i), "{\"seq\":" + i + "}")));
            }
            for (Future<RecordMetadata> f : acks) {
                f.get();
                produced++;
            }
        }
        Properties cp = new Properties();
        cp.putAll(base);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        int consumed = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.currentTimeMillis() + 30000;
            while (consumed < produced && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    consumed++;
                }
            }
        }
        System.out.println("OK produced=" + produced + " consumed=" + consumed);
    }
}
