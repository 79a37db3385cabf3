// Package mqtt is a [bridge.Sink] that publishes samples to an MQTT broker,
// one message per sample, with the JSON encoding of [bridge.AppendJSON] as
// payload (or, with layout: batch, one message per source and poll cycle;
// see "Batch layout" below):
//
//	topic   m2m/meter1/voltage_l1
//	payload {"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}
//
// It speaks MQTT 3.1.1 through github.com/eclipse/paho.mqtt.golang and
// MQTT 5 through github.com/eclipse/paho.golang (autopaho), chosen by
// Config.Version. It is tested against Mosquitto.
//
// # Settings
//
// [Config] is plain data. [Config.Validate] checks all of it without I/O and
// returns every problem at once, each a *bridge.FieldError whose Path is
// the YAML key ("url", "qos", "key_file") and, for a misspelt value, a
// Hint ("did you mean ...?"); [Version] decodes strictly from YAML
// (encoding.TextUnmarshaler). [New] applies the same rules, loads the TLS
// files (reporting their problems at ca_file or cert_file), but does not
// dial. A username without a password is valid (MQTT allows it, and some
// brokers take a token as the username); a password without a username is
// refused for MQTT 3.1.1. The gateway's YAML block uses the keys below (only
// url is required):
//
//	mqtt:
//	  url: tcp://127.0.0.1:1883      # tcp:// mqtt:// | ssl:// tls:// mqtts:// | ws:// wss://
//	  version: 3                     # 3 (MQTT 3.1.1, default; also "3.1.1") or 5
//	  client_id: gateway-1           # default: random "m2mbridge-…"; required with persistent_session
//	  username: bridge               # password: from password_env / password_file (resolved by the gateway)
//	  ca_file: ca.pem                # TLS only: CA that signs the broker's certificate (default: system roots)
//	  cert_file: client.pem          # TLS only: client certificate and key, both or neither
//	  key_file: client.key
//	  server_name: broker.example    # TLS only: name checked in the broker's certificate (default: URL host)
//	  topic: "m2m/{source}/{point}"  # the default
//	  qos: 1                         # 0 (default), 1 or 2
//	  retain: false
//	  persistent_session: false      # false: clean session (default)
//	  session_expiry: 1h             # MQTT 5 persistent session lifetime
//	  status_topic: m2m/status/gateway-1   # birth "online" / will "offline", retained
//	  layout: sample                 # sample (default: a message per sample) | batch
//	  metadata_topic: "m2m/{source}/meta"  # batch only: units once per connection, retained
//	  compression: none              # none (default) | zstd (batch and version 5 only)
//	  max_in_flight: 1024            # unacknowledged QoS 1/2 publishes
//	  ack_timeout: 10s
//	  keep_alive: 30s
//	  connect_timeout: 10s
//	  max_reconnect_interval: 10s
//
// The password is a field of [Config] ([Config.Password]) but has no YAML
// key, so that it is never written into a configuration file; it is never
// logged, and [Config.String] redacts it.
//
// # Topics
//
// The topic template holds literal text and the placeholders {source} and
// {point}; any other {name}, an unbalanced brace, the wildcards '+' and '#',
// NUL or invalid UTF-8 in the template is an error at construction. In the
// values put in place of {source} and {point}, the characters a topic name
// cannot carry are replaced by '_': '+', '#', NUL, each byte of invalid
// UTF-8, '/' (so that a name stays one topic level), and a '$' that would
// begin the topic (topics starting with '$' are the broker's). A source
// "line/1+" thus publishes to m2m/line_1_/<point>. [Sink.Topic] gives the
// topic of a source and point.
//
// # Batch layout, metadata and compression
//
// With layout: batch the sink publishes one message per source and poll
// cycle instead of one per sample, on a topic that may hold {source} but
// not {point} (default [DefaultBatchTopic], "m2m/{source}"; a topic without
// {source}, such as "m2m/all", carries every source's messages, each naming
// its source in the payload, and with retain the broker keeps only the last
// source's), in the JSON of [bridge.AppendBatchJSON]:
//
//	topic   m2m/meter1
//	payload {"source":"meter1","time":"2026-11-21T10:00:00.123456789Z","seq":[101,102],"points":[
//	          {"point":"voltage_l1","value":230.5,"unit":"V"},{"point":"frequency","value":50.01,"unit":"Hz"}]}
//
// A Write's batch is cut into messages by [bridge.NextBatch]: a message ends
// where the source changes, where a point repeats (the next cycle) or where
// the sequence numbers have a gap, and holds at most 2,000 points. seq is the
// range of the message's sequence numbers ([first, last]; the n-th point has
// first+n), so a consumer that sees the next message of the source start
// at last+1 lost nothing. A message fails or succeeds as a whole: the
// [*bridge.BatchError] names every sample of a message that failed. With
// MQTT 5 each message carries the Content Type "application/json".
//
// Units need not repeat in every message: with metadata_topic (which must
// hold {source}, so that each source has its own retained message, and not
// {point}), the batch messages leave them out and the
// sink publishes, retained, a metadata message per source
// ([bridge.AppendMetaJSON]) before the first batch message of the source on
// each connection, and again whenever a point appears or its unit changes:
//
//	topic   m2m/meter1/meta
//	payload {"source":"meter1","units":{"frequency":"Hz","voltage_l1":"V"}}
//
// A consumer subscribes to both (m2m/+ and m2m/+/meta); being retained, the
// metadata arrives first even for a late subscriber. A metadata_topic that
// could name the topic of a batch message for some pair of source names is
// refused (topic m2m/{source}/x with metadata_topic m2m/meta/{source}: the
// sources "meta" and "x" would share m2m/meta/x); one with a number of
// levels the topic does not have, or a literal level where the topic has a
// different one, cannot. It keeps the last
// metadata message of each source and gives each point of a batch message
// the unit the metadata names for its source and point ([bridge.DecodeMetaJSON],
// [bridge.DecodeBatchJSON]). A batch Write whose metadata cannot be
// published fails as a whole, so that no data goes out that a consumer
// could not join.
//
// The metadata tracks at most 100,000 points over all sources (a source
// keeps its points for the sink's life); a message with a point beyond
// them carries its units itself, and [Sink.Stats] counts each such point
// (UntrackedPoints). A metadata message is never published with no units.
// When the metadata cannot be published, the Write's samples fail with
// that error, except those already failed permanently (a topic too long),
// which stay permanent.
//
// compression: zstd (MQTT 5 and layout batch only) compresses each batch
// message into one zstd frame (RFC 8878, github.com/klauspost/compress),
// announced by the Content Type "application/json+zstd"; a consumer
// decompresses the payload (any zstd decoder) and reads the JSON above.
// The metadata messages are not compressed. MQTT 3.1.1 has no property to
// announce it and is refused, as is zstd with layout sample, whose small
// messages would not gain. The README's bandwidth table gives the bytes
// per sample of each layout.
//
// # Delivery
//
// Write publishes every sample of the batch, keeping up to MaxInFlight QoS
// 1/2 publishes unacknowledged at once, and returns when each one is
// acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP) or, at QoS 0, handed to the
// connection (QoS 0 is at most once: a sample written just before the
// connection breaks may be lost without an error). When some fail it returns a [*bridge.BatchError] naming exactly
// those samples, each with its cause: [ErrNotConnected] while the connection
// is down, [ErrAckTimeout] when no acknowledgement came within AckTimeout,
// the broker's refusal, or the context's error. The payloads of one Write are
// encoded into one buffer, which is never reused.
//
// With MQTT 5, the broker's Receive Maximum also bounds the publishes in
// flight (Mosquitto's default is 20).
//
// # Connection
//
// [Sink.Connect] dials and waits for the first connection; Write dials too
// when Connect was not called. Once connected, the sink reconnects by itself
// whenever the connection is lost, waiting between attempts up to
// MaxReconnectInterval (MQTT 3.1.1: paho's back-off, from 1s doubling; MQTT
// 5: from 100ms doubling, with jitter); while it is down, Write fails at once
// with [ErrNotConnected] rather than queueing, so nothing piles up in memory
// and the caller (the Bridge, with its spool) decides what to retry.
//
// With StatusTopic set, the sink publishes "online" (retained, QoS 1) on
// every connection, registers "offline" (retained, QoS 1) as its last will,
// which the broker publishes when the connection ends without a DISCONNECT,
// and publishes "offline" itself on Close before disconnecting cleanly.
//
// # Errors and retries
//
// Write publishes each sample once and reports, per sample, what failed; it
// never retries a publish itself (the client's reconnection, and MQTT's own
// redelivery of unacknowledged QoS 1/2 messages on a resumed session, are
// not retries of samples): the Bridge's Retry is the one retry policy. The
// only error marked [bridge.Permanent] is a topic longer than MQTT allows
// (65,535 bytes), which the sample's names make. A broker's refusal (an
// MQTT 5 reason code such as 0x87 Not authorized or 0x97 Quota exceeded),
// a timeout or a lost connection keeps the samples for the Bridge to retry.
// URLs are printed with passwords and query values hidden (a URL with user
// information is refused by [New]).
//
// # Ranges
//
// [Config.Validate] and [New] refuse, naming the setting, values that would fail or hang at run
// time: topic and status_topic at most 1,024 bytes; qos 0 to 2;
// max_in_flight 1 to 65,535; ack_timeout and connect_timeout 100ms to 10m;
// keep_alive 1s to 65,535s; max_reconnect_interval 100ms to 1h;
// session_expiry 1s to 4,294,967,295s. 0 means the default.
//
// # Commands
//
// [Commands] is the other direction: it receives write commands and hands
// each to a [bridge.WriteFunc] (usually [bridge.Bridge.Write], which routes
// it by source and point, applies the point's rules and rate limit, writes,
// reads back, counts and logs). [NewCommands] checks a [CommandsConfig]
// (the connection keys above, inline, plus write_timeout; qos, retain and
// max_in_flight are refused) and does not dial; [Commands.Run] connects,
// subscribes at QoS 1 to the topic template with each placeholder turned
// into '+' (default m2m/cmd/{source}/{point}, subscribed as m2m/cmd/+/+;
// {source} and {point} must each be a whole level), reads the source and
// point back from the topic of each message, and answers:
//
//	commands:
//	  - mqtt:
//	      url: tcp://127.0.0.1:1883
//	      version: 5
//	      topic: "m2m/cmd/{source}/{point}"   # the default
//	      write_timeout: 5s                   # the default
//
//	topic   m2m/cmd/plc1/setpoint
//	payload {"value": 42.5, "id": "abc"}
//	answer  {"id":"abc","ok":true,"value":42.5,"matched":true,"time":"..."}
//	        {"id":"abc","ok":false,"error":"setpoint: 95 is above max 80"}
//
// The payload is decoded by [bridge.DecodeCommand]; one that does not
// decode is answered ok:false with the reason and nothing is written. The
// write gets the origin "mqtt <topic>" and a deadline of write_timeout.
// The answer ([bridge.AppendCommandReply]) is published at QoS 1 to the
// request's MQTT 5 Response Topic, with its Correlation Data (MQTT 5
// section 4.10), when it names one, and otherwise to <topic>/reply
// (m2m/cmd/plc1/setpoint/reply), which the '+' filter does not match.
// A command whose id was seen for the same source and point within the
// last minute (at most 10,000 ids are kept) is not written again: it gets
// the first answer, once that is known (a QoS 1 redelivery, or a client
// that publishes again). Commands without an id are not deduplicated.
//
// Up to 16 commands are handled at once; while all are busy the client's
// message callback waits, which holds the broker back rather than queueing.
// Run reconnects like the sink (the first connection is retried too,
// each failure logged to CommandsConfig.Logger) and subscribes again on
// every connection. With persistent_session, commands published while the
// source was offline are delivered, and written, when it reconnects; the
// default clean session drops them. When ctx ends (or [Commands.Close] is
// called) Run stops taking commands, lets the ones in progress end (their
// writes see the cancelled context; their answers may not be sent),
// disconnects, ends its goroutines and returns nil. Run is called once.
//
// # Concurrency
//
// A Sink follows the [bridge.Sink] contract: Write and Close are called one
// at a time (from any goroutine); Connect and Topic may be called at any time.
// Close ends every goroutine the sink started.
// A Commands' methods may be called from any goroutine; Run ends every
// goroutine it started before it returns.
package mqtt
