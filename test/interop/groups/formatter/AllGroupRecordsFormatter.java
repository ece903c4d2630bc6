// Kafka's GroupMetadataMessageFormatter (kafka-tools 4.4) prints only classic GroupMetadata
// records; this one prints every record type Kafka's group coordinator defines, decoded by
// Kafka's own GroupCoordinatorRecordSerde, so a test can check that the KIP-848 records yard
// writes to __consumer_offsets are what Kafka reads. Compiled by the test that uses it.
import org.apache.kafka.tools.consumer.GroupMetadataMessageFormatter;

public class AllGroupRecordsFormatter extends GroupMetadataMessageFormatter {
    @Override
    protected boolean isRecordTypeAllowed(short recordType) {
        return true;
    }
}
