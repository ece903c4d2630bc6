package dev.yard.ecosystem;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * A Kafka Streams word count with a repartition and a persistent state store: lines (no key)
 * are split into words, regrouped by word (the repartition topic APP-words-repartition), counted
 * in the RocksDB store "counts" (changelog APP-counts-changelog, compacted) and the counts
 * written to the output topic (String key, Long value). Streams creates its internal topics
 * itself.
 *
 * <p>Usage: WordCount BOOTSTRAP APP_ID GUARANTEE INPUT OUTPUT STATE_DIR, GUARANTEE being
 * at_least_once or exactly_once_v2. It reads commands on stdin: "restart" closes the instance
 * (leaving the group), wipes its local state so that the new instance restores the store from
 * the changelog, and starts a new one; "stop" (or end of input) closes it and exits. It prints
 * "STATE s" on every state change and "UNCAUGHT ..." for an exception that killed a stream
 * thread (the thread is then replaced).
 */
public final class WordCount {
    public static void main(String[] args) throws Exception {
        if (args.length != 6) {
            System.err.println("usage: WordCount BOOTSTRAP APP_ID GUARANTEE INPUT OUTPUT STATE_DIR");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args[2]);
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        // Small and fast: commit often, no record cache (every update is written out).
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        props.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), 10000);
        props.put(StreamsConfig.RETRY_BACKOFF_MS_CONFIG, 100);

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(args[3], Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(line -> Arrays.asList(line.trim().split("\\s+")))
                .filter((k, w) -> !w.isEmpty())
                .groupBy((k, w) -> w, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(args[4], Produced.with(Serdes.String(), Serdes.Long()));
        Topology topology = builder.build();
        System.err.println(topology.describe());

        KafkaStreams streams = start(topology, props);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            line = line.trim();
            if (line.equals("restart")) {
                close(streams);
                streams.cleanUp();
                System.out.println("WIPED");
                streams = start(topology, props);
            } else if (line.equals("stop")) {
                break;
            }
        }
        close(streams);
        System.out.println("STOPPED");
        System.exit(0);
    }

    private static KafkaStreams start(Topology topology, Properties props) {
        KafkaStreams streams = new KafkaStreams(topology, props);
        streams.setStateListener((now, before) -> System.out.println("STATE " + now));
        streams.setUncaughtExceptionHandler(e -> {
            System.out.println("UNCAUGHT " + e.toString().replace('\n', ' '));
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        streams.start();
        return streams;
    }

    private static void close(KafkaStreams streams) {
        boolean ok = streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                .withTimeout(Duration.ofSeconds(30)));
        if (!ok) {
            System.out.println("UNCAUGHT close timed out");
        }
    }
}
