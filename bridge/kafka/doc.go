// Package kafka is a [bridge.Sink] that produces samples to Apache Kafka with
// the franz-go client (github.com/twmb/franz-go/pkg/kgo).
//
// Each sample becomes one record:
//   - topic: the Topic template with {source} and {point} replaced by the
//     sample's source and point. Kafka allows only a-z A-Z 0-9 '.', '_' and
//     '-' in a topic name, so every other byte of the source or point is
//     replaced by '_' ("plc 1/hall" becomes "plc_1_hall"; each byte of a
//     multi-byte UTF-8 character becomes one '_'). The template's own text
//     must use only the allowed characters. The default template is "m2m":
//     one topic for everything, which is how Kafka is best used; a
//     per-point topic ("m2m.{source}.{point}") multiplies partitions.
//     A sample whose topic comes out empty, "." or "..", or longer than 249
//     characters fails with [ErrTopic].
//   - key: "<source>/<point>". The default partitioner hashes the key, so
//     every sample of a point lands in the same partition and stays in order.
//   - value: the JSON encoding of the sample ([bridge.AppendJSON]).
//   - timestamp: the time of production, set by the client. (franz-go
//     measures the delivery timeout from the record timestamp, so the sample's
//     own time, which may be old for spooled data, is not used there; it is in
//     the value.)
//
// The producer is idempotent (acks from all in-sync replicas, producer id and
// sequence numbers), so the client's own retries neither reorder nor
// duplicate records within a partition. Across Writes the delivery is
// at-least-once: a Write the Bridge retries may produce records again.
//
// # Settings
//
// [Config] holds them; in YAML (keys in the field tags):
//
//	brokers: ["127.0.0.1:9092"]   # seed brokers, host:port; required
//	topic: m2m                    # template; {source} and {point}; default m2m
//	client_id: m2mbridge          # default m2mbridge
//	compression: snappy           # none | gzip | snappy (default) | lz4 | zstd
//	max_buffered_records: 10000   # records in flight at most; Write waits for room
//	delivery_timeout: 30s         # a Write fails (retriable) when not acknowledged within it
//	auto_create_topics: false     # ask brokers to create missing topics
//	sasl_mechanism: SCRAM-SHA-512 # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512; empty: no SASL
//	max_message_bytes: 1000000    # largest record and batch, 1024 to 104857600
//	username: bridge              # SASL credentials; the gateway resolves password_env
//	password: ...                 #   and password_file into password
//	tls: true                     # TLS to the brokers (implied by the next four)
//	ca_file: ca.pem               # authorities to trust; empty: the system's
//	cert_file: client.pem         # client certificate and key, for mutual TLS
//	key_file: client-key.pem
//	insecure_skip_verify: false   # tests only
//
// Compression is franz-go's, per record batch (the Kafka record batch
// format's codec attribute): the broker stores the batch as it came and
// consumers decompress it, so the bytes saved are saved on the link to the
// broker and on its disk. For 200 readings of one point, the batches
// measured 29.9 kB without compression, 3.4 kB with snappy, 3.0 kB with
// lz4, 1.9 kB with gzip and 1.2 kB with zstd (TestCompressionOnTheWire);
// zstd needs Kafka 2.1 or later.
//
// [Config.Validate] checks every setting without I/O and reports all
// problems at once, each a *bridge.FieldError whose Path is the YAML key
// (an unparsable broker address at "brokers[1]", an unknown placeholder at
// "topic", an unknown compression or SASL mechanism with a "did you mean"
// Hint; [Compression] and [SASLMechanism] also decode strictly from YAML).
// With sasl_mechanism, username and a non-empty password are required (an
// empty one is what a password_env naming a variable that is set but empty
// gives); without it neither may be set. [New] applies the same rules and
// reads the TLS files, reporting their problems at ca_file or cert_file; it
// does no network I/O. The client is made on [Sink.Connect] or the first
// Write and reconnects by itself.
//
// # Errors
//
// Write waits until every record of the batch is acknowledged. It returns nil
// when all were, a [*bridge.BatchError] naming the samples that failed when
// only some did, and a single error when all did. The sink sends each
// record to the client once; franz-go's own retries of a produce request
// within DeliveryTimeout are part of one delivery (they keep idempotence
// and order), the Bridge's Retry is the retry policy across Writes.
//
// Only errors that say the record itself is bad are wrapped in
// [bridge.Permanent]: [ErrTopic] (the topic made from the sample's names is
// invalid), a record larger than max_message_bytes (kerr.MessageTooLarge,
// with the sizes in the message), and Kafka's INVALID_RECORD,
// CORRUPT_MESSAGE and INVALID_TOPIC_EXCEPTION. Everything else is
// retriable, so the samples stay queued or spooled: timeouts, network
// errors, an unknown topic (it may yet be created), and also what Kafka
// marks not retriable but is a setting to fix: authorisation and
// authentication failures (TOPIC_AUTHORIZATION_FAILED, SASL), an
// unsupported version or compression, and MESSAGE_TOO_LARGE for a record
// within max_message_bytes (the broker's or topic's limit is lower). A
// broker address with user information ("u:PW@host:9092") is refused, and
// every address is printed with its password hidden.
// When no broker answers, Write gives up after DeliveryTimeout with
// [ErrDeliveryTimeout].
//
// franz-go produces only to the first instance of a topic: when a topic is
// deleted and recreated, or the cluster comes back without its data, its
// records fail with UNKNOWN_TOPIC_ID. Write reports that (retriable) and
// purges the topic from the client, so the Bridge's retry produces to the
// new topic (on Kafka before 4.1 the first records there may be duplicated
// or out of order; see franz-go's README, "Topic recreation").
//
// # Tests
//
// No Kafka broker is available where this package is developed: its tests
// run against franz-go's in-process fake cluster, kfake
// (github.com/twmb/franz-go/pkg/kfake), which speaks the real Kafka wire
// protocol, including SASL and TLS. They read every record back with a kgo
// consumer and check its topic, key, value and per-point order, and they
// stop and restart the cluster under a running sink, both with its data
// (kfake.DataDir, as a restarted broker) and without (the topic recreated).
//
// # Ranges
//
// [Config.Validate] and [New] refuse, naming the setting, values that would fail or hang at run
// time: topic template at most 1,024 bytes (a topic at most 249);
// max_buffered_records 1 to 10,000,000; max_message_bytes 1,024 to
// 104,857,600; delivery_timeout 1s to 1h. 0 means the default.
//
// # Concurrency
//
// A Sink is safe for concurrent use; calls are serialised.
package kafka
