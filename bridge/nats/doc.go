// Package nats is a [bridge.Sink] that publishes samples to NATS, one
// message per sample, with the JSON encoding of [bridge.AppendJSON] as
// payload:
//
//	subject m2m.meter1.voltage_l1
//	payload {"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}
//
// It uses github.com/nats-io/nats.go and its jetstream package, and is
// tested against nats-server with JetStream.
//
// # Settings
//
// [Config] is plain data. [Config.Validate] checks all of it without I/O and
// returns every problem at once, each a *bridge.FieldError whose Path is
// the YAML key ("url", "subject", "password") and, for a misspelt URL
// scheme, a Hint ("did you mean ...?"). [New] applies the same rules, loads
// the TLS files and checks that creds_file exists (reporting their problems
// at their keys), but does not dial. One way to authenticate may be given:
// creds_file, token, or username with a non-empty password (nats-server
// checks both, so a username with an empty password, what a password_env
// naming a variable that is set but empty gives, is refused at "password").
// The gateway's YAML block uses the keys below (only url is required):
//
//	nats:
//	  url: nats://127.0.0.1:4222        # nats:// tls:// ws:// wss://; several: comma-separated
//	  subject: "m2m.{source}.{point}"   # the default
//	  jetstream: true                   # false: core NATS (at most once)
//	  stream: M2M                       # JetStream only: the stream the subjects belong to
//	  create_stream: true               # create it, with the template's subjects, when absent
//	  layout: sample                    # sample (default: a message per sample) | batch
//	  metadata_subject: "m2m.meta.{source}"   # batch only: units once per connection and on change
//	  max_ack_pending: 4096             # JetStream publishes awaiting their acknowledgement
//	  ack_timeout: 10s
//	  name: gateway-1                   # connection name shown by the server
//	  creds_file: gateway.creds         # or token (token_env/token_file), or username + password
//	  username: bridge                  # password: from password_env / password_file (resolved by the gateway)
//	  ca_file: ca.pem                   # TLS: CA that signs the server's certificate
//	  cert_file: client.pem             # TLS: client certificate and key, both or neither
//	  key_file: client.key
//	  connect_timeout: 5s
//	  reconnect_wait: 1s
//
// Token and Password are fields of [Config] without a YAML key, so that they
// are never written into a configuration file; they are never logged, and
// [Config.String] redacts them. Only one way to authenticate may be given.
//
// # Subjects
//
// The subject template holds literal text and the placeholders {source}
// and {point}; any other {name}, an unbalanced brace, a wildcard ('*' or
// '>'), whitespace or an empty token in the template is an error at
// construction. In the values put in place of {source} and {point}, the
// characters NATS does not allow inside a token are replaced by '_': '.'
// (so that a name stays one token), '*', '>', whitespace and other control
// characters, and each byte of invalid UTF-8; an empty name becomes "_". A
// source "line 1.meter*" thus publishes to m2m.line_1_meter_.<point>.
// [Sink.Subject] gives the subject of a source and point, and
// [Sink.StreamSubject] the filter that covers them all (each token holding a
// placeholder becomes '*': "m2m.*.*").
//
// # Batch layout and metadata
//
// With layout: batch the sink publishes one message per source and poll
// cycle instead of one per sample, on a subject that holds {source} only
// (default [DefaultBatchSubject], "m2m.{source}"), in the JSON of
// [bridge.AppendBatchJSON] (source, time, seq range and the points with
// value, unit and quality; see its documentation for the schema). A Write's
// batch is cut into messages by [bridge.NextBatch] (a new message where the
// source changes, a point repeats or the sequence numbers have a gap; at
// most 2,000 points), and a message fails or succeeds as a whole.
//
// With metadata_subject (which may hold {source}, not {point}, and must not
// overlap the batch subjects), the batch messages leave units out and the
// sink publishes a metadata message per source ([bridge.AppendMetaJSON],
// {"source":"meter1","units":{"voltage_l1":"V"}}) before the first batch
// message of the source on each connection, and again whenever a point
// appears or its unit changes. NATS keeps no retained messages: a consumer
// of core NATS subscribes to both subjects before the data flows, or waits
// for the next metadata message (after the sink's next reconnection or a
// change of units); with JetStream the metadata
// subjects are stored in the stream too (create_stream adds their filter,
// and an existing stream must cover them), so a consumer that reads the
// stream from the start, or asks for the last message per subject
// (DeliverLastPerSubjectPolicy on the metadata subjects), has them. It
// keeps the last metadata of each source and gives each point of a batch
// message the unit named there ([bridge.DecodeMetaJSON],
// [bridge.DecodeBatchJSON]). A batch Write whose metadata cannot be
// published fails as a whole. NATS batch messages are not compressed.
//
// # Delivery
//
// With JetStream, Write publishes every sample asynchronously, keeping up
// to MaxAckPending unacknowledged, and returns when the stream has
// acknowledged each one. When some fail it returns a [*bridge.BatchError]
// naming exactly those samples, each with its cause: [ErrNotConnected]
// while the connection is down, [ErrAckTimeout] when no acknowledgement came
// within AckTimeout, jetstream.ErrNoStreamResponse when no stream takes the
// subject, the server's error, or the context's. Acknowledgements a Write
// stopped waiting for are dropped from the client (CleanupPublisher) when the
// next Write starts, so they do not count against MaxAckPending.
//
// With core NATS, Write publishes every sample and ends with a flush, a
// round trip to the server: nil means the server has received every sample
// (core NATS itself delivers at most once, to the subscribers present). A
// failed flush is a plain error: none of the batch may be assumed delivered.
//
// # Connection
//
// [Sink.Connect] dials and, for JetStream with a Stream, checks that the
// stream exists and that its subjects cover the template's (a retriable
// error if they do not: a setting to fix, so the samples stay queued), or
// creates it; Write dials too when Connect was not called. Once connected,
// nats.go reconnects by itself forever, ReconnectWait apart; while the
// connection is down, publishes fail at once with [ErrNotConnected] rather
// than being buffered (the client's reconnect buffer is disabled), so nothing
// piles up in memory and the caller (the Bridge, with its spool) decides what
// to retry.
//
// # Errors and retries
//
// Write publishes each sample once and reports, per sample, what failed; it
// never retries a publish itself (nats.go's reconnection is not a retry of
// samples): the Bridge's Retry is the one retry policy. Only two errors are
// marked [bridge.Permanent], both about the sample itself: a message larger
// than the server's max_payload (one message is one sample) and a subject
// the server refuses (made from the sample's names). Everything else, a
// permissions violation, a stream that is missing or full, an
// acknowledgement timeout, keeps the samples for the Bridge to retry. URLs
// are printed with passwords and query values hidden (a URL with user
// information is refused by [New]).
//
// # Ranges
//
// [Config.Validate] and [New] refuse, naming the setting, values that would fail or hang at run
// time: subject at most 1,024 bytes; max_ack_pending 1 to 1,000,000;
// ack_timeout and connect_timeout 100ms to 10m; reconnect_wait 10ms to 1h.
// 0 means the default.
//
// # Commands
//
// [Commands] is the other direction: request-reply write commands, each
// handed to a [bridge.WriteFunc] (usually [bridge.Bridge.Write]).
// [NewCommands] checks a [CommandsConfig] (the connection keys above,
// inline, plus write_timeout; jetstream, stream, create_stream,
// max_ack_pending and ack_timeout are refused) and does not dial;
// [Commands.Run] connects, subscribes to the subject template with each
// placeholder token turned into '*' (default m2m.cmd.{source}.{point},
// subscribed as m2m.cmd.*.*; {source} and {point} must each be a whole
// token), reads the source and point back from each request's subject, and
// answers to its reply subject with the JSON of the MQTT command source:
//
//	commands:
//	  - nats:
//	      url: nats://127.0.0.1:4222
//	      subject: "m2m.cmd.{source}.{point}"   # the default
//	      write_timeout: 5s                     # the default
//
//	nats req m2m.cmd.plc1.setpoint '{"value": 42.5, "id": "abc"}'
//	{"id":"abc","ok":true,"value":42.5,"matched":true,"time":"..."}
//
// A payload [bridge.DecodeCommand] refuses is answered ok:false with the
// reason and nothing is written; the write gets the origin
// "nats <subject>" and a deadline of write_timeout, so a requester should
// wait a little longer than that. A request whose id was seen for the same
// source and point within the last minute (at most 10,000 ids) is not
// written again: it gets the first answer (a requester that retries after a
// timeout). A message published without a reply subject is written but
// not answered.
//
// Up to 16 requests are handled at once; beyond that they wait in the
// subscription's pending queue (nats.go's limits, which report a slow
// consumer when exceeded). Run retries the first connection like any later
// one (nats.go's RetryOnFailedConnect) and resubscribes after a
// reconnection. When ctx ends (or [Commands.Close] is called) Run stops
// taking requests, lets those in progress end (their writes see the
// cancelled context), closes the connection, ends its goroutines and
// returns nil. Run is called once.
//
// # Concurrency
//
// A Sink follows the [bridge.Sink] contract: Write and Close are called one
// at a time (from any goroutine); Connect, Subject and StreamSubject may be
// called at any time. Close ends every goroutine the sink started.
// A Commands' methods may be called from any goroutine; Run ends every
// goroutine it started before it returns.
package nats
