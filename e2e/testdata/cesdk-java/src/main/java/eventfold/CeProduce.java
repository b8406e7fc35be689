package eventfold;

import io.cloudevents.CloudEvent;
import io.cloudevents.core.message.Encoding;
import io.cloudevents.jackson.JsonFormat;
import io.cloudevents.kafka.CloudEventSerializer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Produces key TAB structured-JSON lines from stdin as CloudEvents with the
 * Java SDK: each value is read by the SDK's JSON event format and written by
 * its Kafka serializer in the content mode given (BINARY or STRUCTURED).
 * The Java client's default partitioner (murmur2) is eventfold's contract.
 * Prints the number of records acknowledged.
 */
public final class CeProduce {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: CeProduce BOOTSTRAP TOPIC BINARY|STRUCTURED < key<TAB>value lines");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, CloudEventSerializer.class);
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        props.put(CloudEventSerializer.ENCODING_CONFIG, Encoding.valueOf(args[2]));
        props.put(CloudEventSerializer.EVENT_FORMAT_CONFIG, JsonFormat.CONTENT_TYPE);
        JsonFormat format = new JsonFormat();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, CloudEvent> producer = new KafkaProducer<>(props);
             BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) {
                    continue;
                }
                int tab = line.indexOf('\t');
                if (tab < 0) {
                    System.err.println("line " + (sent.size() + 1) + " has no tab between key and value");
                    System.exit(2);
                }
                CloudEvent event = format.deserialize(line.substring(tab + 1).getBytes(StandardCharsets.UTF_8));
                sent.add(producer.send(new ProducerRecord<>(args[1], line.substring(0, tab), event)));
            }
            producer.flush();
            for (Future<RecordMetadata> f : sent) {
                f.get(); // throws on a failed delivery
            }
        }
        System.out.println(sent.size());
    }
}
