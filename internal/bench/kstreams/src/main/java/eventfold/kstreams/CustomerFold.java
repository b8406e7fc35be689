package eventfold.kstreams;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.InvalidStateStoreException;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;

/**
 * The customer fold of eventfold written as a Kafka Streams user would write
 * it: the events topic (structured-mode CloudEvents JSON, keyed by customer
 * id) grouped by key and aggregated into the default RocksDB store, with the
 * default configuration but for the thread count, and an interactive-query
 * endpoint on Jetty.
 *
 * <p>The aggregator folds valid events as eventfold's processor.Apply does:
 * registration, rename, email, address, suspension, reactivation, erasure,
 * the expectedversion check and duplicates by event id among the last 32
 * decisions. A record that is not a CloudEvent of the contract is skipped, as
 * eventfold sends it to its dead-letter topic and leaves the state alone.
 *
 * <p>Usage: CustomerFold bootstrap topic applicationId stateDir httpPort threads
 *
 * <p>HTTP: GET /customers/{id} (200 with the state, 404), GET /ready (200 once
 * RUNNING, i.e. restored), GET /progress (records aggregated by this process
 * and the nanoseconds from the first to the last).
 */
public final class CustomerFold {
  static final String STORE = "customers";
  static final int RECENT_DECISIONS = 32;
  static final ObjectMapper JSON =
      new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  /** Address is the postal address of a customer. */
  @JsonInclude(JsonInclude.Include.NON_EMPTY)
  public static final class Address {
    public String line1;
    public String line2;
    public String city;
    @JsonProperty("postal_code")
    public String postalCode;
    public String country;
  }

  /** Customer is the aggregate: the fold of a customer's events so far. */
  @JsonInclude(JsonInclude.Include.NON_EMPTY)
  public static final class Customer {
    public String id;
    @JsonInclude(JsonInclude.Include.ALWAYS)
    public long version;
    public String status;
    public String name;
    public String email;
    public Address address;
    @JsonProperty("suspended_reason")
    public String suspendedReason;
    @JsonProperty("created_at")
    public String createdAt;
    @JsonProperty("updated_at")
    public String updatedAt;
    @JsonProperty("last_event_id")
    public String lastEventId;
    /** The ids of the most recent decisions, oldest first, to detect duplicates. */
    @JsonProperty("recent_event_ids")
    public List<String> recentEventIds = new ArrayList<>();
  }

  /** CustomerSerde stores the aggregate as JSON, as most users would. */
  static final class CustomerSerde implements Serde<Customer> {
    @Override
    public Serializer<Customer> serializer() {
      return (topic, c) -> {
        try {
          return c == null ? null : JSON.writeValueAsBytes(c);
        } catch (IOException e) {
          throw new IllegalStateException("failed to encode customer", e);
        }
      };
    }

    @Override
    public Deserializer<Customer> deserializer() {
      return (topic, data) -> {
        try {
          return data == null ? null : JSON.readValue(data, Customer.class);
        } catch (IOException e) {
          throw new IllegalStateException("failed to decode customer", e);
        }
      };
    }
  }

  static final AtomicLong records = new AtomicLong();
  static volatile long firstNanos;
  static volatile long lastNanos;

  /** fold applies one record to the aggregate, as processor.Apply does on valid events. */
  static Customer fold(String key, byte[] value, Customer c) {
    long now = System.nanoTime();
    if (records.getAndIncrement() == 0) {
      firstNanos = now;
    }
    lastNanos = now;
    JsonNode ev;
    try {
      ev = JSON.readTree(value);
    } catch (IOException e) {
      return c; // not JSON: eventfold dead-letters it
    }
    String id = text(ev, "id");
    String type = text(ev, "type");
    JsonNode data = ev.get("data");
    if (id == null || type == null || data == null || !data.isObject()) {
      return c; // not an event of the contract: eventfold dead-letters it
    }
    if (c.recentEventIds.contains(id)) {
      return c; // a duplicate
    }
    if (!valid(type, data)) {
      return remember(c, id);
    }
    boolean reject;
    if ("erased".equals(c.status)) {
      reject = true;
    } else if (type.equals("customer.registered")) {
      reject = c.version > 0;
    } else {
      reject = c.version == 0;
    }
    JsonNode expected = ev.get("expectedversion");
    if (!reject && expected != null && !expected.isNull() && expected.asLong() != c.version) {
      reject = true;
    }
    if (reject) {
      return remember(c, id);
    }
    switch (type) {
      case "customer.registered" -> {
        c.status = "active";
        c.name = data.get("name").asText().strip();
        c.email = data.get("email").asText().strip();
        c.address = address(data.get("address"));
      }
      case "customer.renamed" -> c.name = data.get("name").asText().strip();
      case "customer.email_changed" -> c.email = data.get("email").asText().strip();
      case "customer.address_changed" -> c.address = address(data.get("address"));
      case "customer.suspended" -> {
        c.status = "suspended";
        c.suspendedReason = text(data, "reason");
      }
      case "customer.reactivated" -> {
        c.status = "active";
        c.suspendedReason = null;
      }
      case "customer.erased" -> {
        c.status = "erased";
        c.name = null;
        c.email = null;
        c.address = null;
        c.suspendedReason = null;
      }
      default -> {
        return remember(c, id);
      }
    }
    c.id = key;
    String time = text(ev, "time");
    if (time != null) {
      if (c.version == 0) {
        c.createdAt = time;
      }
      c.updatedAt = time;
    }
    c.version++;
    c.lastEventId = id;
    return remember(c, id);
  }

  static boolean valid(String type, JsonNode data) {
    return switch (type) {
      case "customer.registered" -> nonBlank(data, "name") && nonBlank(data, "email");
      case "customer.renamed" -> nonBlank(data, "name");
      case "customer.email_changed" -> nonBlank(data, "email");
      case "customer.address_changed" -> data.has("address") && data.get("address").isObject();
      case "customer.suspended", "customer.reactivated", "customer.erased" -> true;
      default -> false;
    };
  }

  static boolean nonBlank(JsonNode n, String field) {
    String s = text(n, field);
    return s != null && !s.isBlank();
  }

  static String text(JsonNode n, String field) {
    JsonNode v = n.get(field);
    return v == null || !v.isTextual() ? null : v.asText();
  }

  static Address address(JsonNode n) {
    if (n == null || !n.isObject()) {
      return null;
    }
    Address a = new Address();
    a.line1 = strip(text(n, "line1"));
    a.line2 = strip(text(n, "line2"));
    a.city = strip(text(n, "city"));
    a.postalCode = strip(text(n, "postal_code"));
    String country = strip(text(n, "country"));
    a.country = country == null ? null : country.toUpperCase(Locale.ROOT);
    return a;
  }

  static String strip(String s) {
    return s == null ? null : s.strip();
  }

  static Customer remember(Customer c, String id) {
    c.recentEventIds.add(id);
    while (c.recentEventIds.size() > RECENT_DECISIONS) {
      c.recentEventIds.remove(0);
    }
    return c;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6) {
      System.err.println("usage: CustomerFold bootstrap topic applicationId stateDir httpPort threads");
      System.exit(2);
    }
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[2]);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args[3]);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args[5]));

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(args[1], Consumed.with(Serdes.String(), Serdes.ByteArray()))
        .groupByKey()
        .aggregate(Customer::new, CustomerFold::fold,
            Materialized.<String, Customer, KeyValueStore<Bytes, byte[]>>as(STORE)
                .withKeySerde(Serdes.String())
                .withValueSerde(new CustomerSerde()));
    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    streams.setUncaughtExceptionHandler(e -> {
      e.printStackTrace();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(Integer.parseInt(args[4]));
    server.addConnector(connector);
    server.setHandler(new Queries(streams));

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      // A clean close writes the checkpoints a restart restores from; it
      // leaves the group, or the next instance would wait out the old
      // member's session (45 s by default) before it gets the partitions.
      streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
          .withTimeout(Duration.ofSeconds(60)));
      try {
        server.stop();
      } catch (Exception e) {
        e.printStackTrace();
      }
      stopped.countDown();
    }));
    streams.start();
    server.start();
    stopped.await();
  }

  /** Queries serves the interactive queries and the bench's probes. */
  static final class Queries extends Handler.Abstract {
    private final KafkaStreams streams;
    private volatile ReadOnlyKeyValueStore<String, Customer> store;

    Queries(KafkaStreams streams) {
      this.streams = streams;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) throws Exception {
      String path = Request.getPathInContext(request);
      if (path.equals("/ready")) {
        boolean ready = streams.state() == KafkaStreams.State.RUNNING;
        return send(response, callback, ready ? 200 : 503, "{\"state\":\"" + streams.state() + "\"}");
      }
      if (path.equals("/progress")) {
        long n = records.get();
        long elapsed = n == 0 ? 0 : lastNanos - firstNanos;
        return send(response, callback, 200,
            "{\"records\":" + n + ",\"elapsed_ns\":" + elapsed + ",\"state\":\"" + streams.state() + "\"}");
      }
      if (!path.startsWith("/customers/")) {
        return send(response, callback, 404, "{\"error\":\"not_found\"}");
      }
      String id = path.substring("/customers/".length());
      Customer c;
      try {
        c = store().get(id);
      } catch (InvalidStateStoreException e) {
        store = null; // rebalancing: ask again for the store next time
        return send(response, callback, 503, "{\"error\":\"unavailable\"}");
      }
      if (c == null || c.version == 0) {
        return send(response, callback, 404, "{\"error\":\"not_found\"}");
      }
      byte[] body = JSON.writeValueAsBytes(c);
      response.setStatus(200);
      response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
      response.getHeaders().put(HttpHeader.ETAG, "\"" + c.version + "\"");
      response.write(true, ByteBuffer.wrap(body), callback);
      return true;
    }

    private ReadOnlyKeyValueStore<String, Customer> store() {
      ReadOnlyKeyValueStore<String, Customer> s = store;
      if (s == null) {
        s = streams.store(StoreQueryParameters.fromNameAndType(STORE, QueryableStoreTypes.keyValueStore()));
        store = s;
      }
      return s;
    }

    private static boolean send(Response response, Callback callback, int status, String body) {
      response.setStatus(status);
      response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
      response.write(true, ByteBuffer.wrap(body.getBytes(StandardCharsets.UTF_8)), callback);
      return true;
    }
  }
}
