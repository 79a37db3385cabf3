// Package opcua is the OPC UA adapter of m2mbridge: a [Source] per server
// that reads a configured list of variables, by subscription or by polling,
// and produces one [bridge.Sample] per reading. It is built on
// github.com/gopcua/opcua v0.9.1 and absorbs that client's quirks.
//
// # Configuration
//
// A [Config] is plain data that loads from YAML ([ParseConfig]) or is written
// as a Go literal; its enums ([Mode], [SecurityPolicy], [SecurityMode])
// implement encoding.TextUnmarshaler with "did you mean" hints.
// [Config.Validate] reports every problem at once, each a
// *bridge.FieldError whose Path is the YAML key relative to the Config
// ("endpoint", "nodes[2].node", "security_mode"); every numeric setting has
// a documented range (the Min and Max constants); a password variable that
// is unset or set but empty is an error. [New] calls it (its error is a
// [*ConfigError]) and does no network I/O. Node ids are written as in the
// specification's text form: "ns=2;s=Temperature", "i=2258", "ns=1;g=...",
// "ns=1;b=...", or "nsu=<namespace URI>;s=..." which is resolved against the
// server's namespace array at every connect (a node whose namespace is
// missing gives Bad samples with BadNodeIdUnknown); an unknown identifier
// type ("ns=1;x=T") is refused. [Browse] lists the variables under a
// node as a ready-made node list; [BrowseTree] returns the objects and
// variables as a tree, each variable with its data type, value rank,
// engineering unit and access level (what the m2m field tool's browse
// shows).
//
// # Samples
//
//   - Value: numbers keep their kind (signed integers → Int, unsigned →
//     Uint, Float/Double → Float), Boolean → Bool, String and LocalizedText
//     → String, DateTime → String in RFC 3339 with nanoseconds (UTC), Guid
//     and NodeId → their text form.
//   - Arrays and structures are not supported: a node whose ValueRank (read
//     at connect) is not scalar, or a value that arrives as an array or an
//     ExtensionObject, gives a Bad sample with code BadTypeMismatch and a
//     reason saying so, every poll or once per subscription. (The check
//     cannot happen in New, which does no I/O.)
//   - Time: the SourceTimestamp; when the server sends none, the
//     ServerTimestamp; when it sends neither, the time the response arrived.
//   - Quality: from the StatusCode's severity bits (Good, Uncertain, Bad);
//     Code is the StatusCode and, for a non-good sample, Reason its name
//     ("BadSensorFailure"). A Bad value is delivered as a Bad sample without
//     a value (the specification says it must not be used), never dropped
//     nor replaced by the last good one; an Uncertain sample keeps its value.
//   - Unit: the configured unit, else the DisplayName of the node's
//     EngineeringUnits property, read at connect.
//   - Seq: left zero; the Bridge numbers each source's samples.
//
// # Modes
//
// In poll mode every node is read each Interval with Read requests of at most
// the server's MaxNodesPerRead operation limit (read once per connect;
// [DefaultMaxNodesPerRead] when the server announces none; halved if the
// server still answers BadTooManyOperations); an empty request is never
// sent; a limit learnt that way is kept across reconnects (a refused Read
// is a Bad service result, after which the upstream client stops
// publishing, so it costs one reconnect). In subscribe mode one subscription is created with the publishing
// interval Interval, and a monitored item per node, in batches of the
// server's MaxMonitoredItemsPerCall, with the node's sampling interval,
// queue size and a DataChangeFilter when a trigger or deadband is set.
//
// # Connection lifecycle
//
// The upstream client's auto-reconnect is disabled because, measured with
// v0.8.0 (and not reworked in v0.9.1), it can end in a state that reports Connected while subscriptions
// never deliver again (upstream issues #879 and #895). Instead:
//
//   - each subscription also monitors the server's CurrentTime (i=2258) as a
//     heartbeat sampled at Watchdog/4, because the upstream client does not
//     deliver keep-alives; if no notification arrives for Watchdog the
//     connection is declared dead ([ErrSilent]) — with no heartbeat
//     available, a probe Read decides instead;
//   - a failed Read in poll mode, a Disconnected/Closed state from the client
//     (its state channel is always drained; the upstream client reports
//     Disconnected, and stops its publish loop, after any response with a
//     Bad service result), a publish error or a Bad
//     StatusChangeNotification also end the connection;
//   - then the client is closed (bounded by a second) and a new client,
//     secure channel, session and subscription are built, with exponential
//     backoff between ReconnectMin and ReconnectMax and ±20% jitter; a
//     session that delivered data resets the backoff, so every outage starts
//     again from ReconnectMin;
//   - on every failed attempt and every lost connection a Bad sample is
//     emitted for every node, with the error as Reason and its StatusCode
//     (BadCommunicationError when there is none) as Code, so consumers see
//     the outage instead of silence; [Source.Health] says the same.
//
// A server that offers no endpoint matching the configured security
// ([ErrNoEndpoint]; some servers offer an empty list while they start) is
// retried like any other failure, the source reported down with that
// reason. Errors that retrying cannot fix end Run with an error wrapping
// [ErrAuthentication] or [ErrUntrustedServer].
//
// # Slow consumers
//
// The source has no queue of its own: it calls Emit in the goroutine that
// read the values, and the Bridge owns every queue and counts every loss
// (give the source a bridge.SourceOptions inbox with drop_oldest if it must
// never wait). While Emit blocks, the source stops reading: in poll mode the
// next Read waits (missed ticks are skipped, not queued); in subscribe mode
// the upstream client's publish loop blocks once the 64-entry notification
// channel is full, the server keeps each monitored item's last QueueSize
// changes and discards older ones, and the time spent in Emit does not
// count against the Watchdog. If Emit blocks for longer than the session
// timeout (max(30s, 3×Watchdog)), the server may end the session; the source
// then reconnects when Emit returns, with Bad samples for the gap. When Emit
// returns an error because its context ended, or [bridge.ErrClosed], Run
// ends; other errors are the Bridge's to count and the source goes on.
//
// # Security
//
// Security policies None, Basic256Sha256, Aes128_Sha256_RsaOaep and
// Aes256_Sha256_RsaPss (Basic128Rsa15 and Basic256 only with
// AllowDeprecatedPolicies) with modes None, Sign and SignAndEncrypt; the
// endpoint is chosen from GetEndpoints; anonymous, user name and certificate
// authentication; the client certificate and key come from files or are
// generated once into PKIDir; the server certificate is verified against a
// pinned SHA-256 thumbprint or a trust directory. Passwords are held as a
// [Secret] and never appear in logs or errors; an endpoint URL with user
// information or a query is refused by Validate, and URLs in errors are
// redacted all the same.
//
// # Hostile input
//
// The upstream decoder trusts the lengths it reads (v0.9.1 included): a
// 12-byte Variant declaring 2^30 ArrayDimensions costs 4 GB before the
// length is compared with the bytes left, a negative array length panics
// (in the client's own goroutine, so the process dies), dimensions whose
// product overflows int32 are expanded into billions of slices, and nested
// DiagnosticInfos or Variants recurse without limit. Any server, or anything
// on the path to it, can send such a message. So every connection of a
// Source (GetEndpoints, the session, [Browse]) goes through a relay of its
// own on 127.0.0.1 (the upstream client dials only a *net.TCPConn), which:
//
//   - enforces the limits the client announces in its Hello: chunks of at
//     most 64 KiB and messages of at most 16 MiB (the upstream client
//     enforces only what the server announces for itself);
//   - on channels whose bodies it can read — security policy None, and mode
//     Sign — checks every service message before its last chunk reaches the
//     decoder: every length, count and nesting depth (at most 100) against
//     the bytes actually sent, Variant dimensions against the array length
//     (Part 6, 5.2.2). The check allocates nothing in proportion to a
//     declared length. A message that fails is never decoded: the connection
//     is closed and the Bad samples (and [Source.Health]) give a reason
//     wrapping [ErrMalformed].
//
// What remains: under SignAndEncrypt the bodies are encrypted end to end, so
// the relay enforces the sizes only; such a message can only come from the
// server whose certificate was verified, not from the network in between,
// and allocations per message stay bounded by the upstream decoder's own
// element limit (65535 per array) except for the ArrayDimensions case. A
// trusted but hostile or broken server using SignAndEncrypt can still make
// the client allocate up to 8 GB once per message.
//
// # Writes
//
// A Source is a [bridge.Writer]: commands from the IoT side reach it
// through bridge.Bridge.Write, which routes by source and point, limits
// the rate per point, emits the sample read back and counts every write.
// [Source.Write] denies by default: a node accepts writes only with
// Writable (YAML writable: true), optionally bounded by Min and Max
// (inclusive) and restricted to the Allowed values (an enumeration's);
// [Config.Validate] refuses min, max or allowed on a node that is not
// writable, and min above max. Before anything is sent, Write refuses,
// with an error wrapping one of the bridge's refusals and naming the node
// and the rule ("setpoint: 95 is above max 80: out of range"):
//
//   - a name not in the Config (bridge.ErrUnknownPoint), a node not
//     writable (bridge.ErrNotWritable);
//   - a value outside Min and Max or not in Allowed (bridge.ErrOutOfRange;
//     compared exactly, an int64 is not rounded first);
//   - a value the node's data type cannot hold exactly. The type is the
//     DataType the server announces (read at connect; for a type that is
//     not built in, that of the node's current value), and the value is
//     never truncated, rounded to an integer or wrapped: 7.5 for an Int32,
//     a string for a Double or a number for a Boolean is
//     bridge.ErrWrongType; 70000 for a UInt16, -1 for a UInt32, 2^24+1 for
//     a Float is bridge.ErrOutOfRange.
//
// Then it sends one Write request and reads the node back on the same
// session, each bounded by Timeout, and returns the sample read back: the
// value, the unit, the server's SourceTimestamp, and the quality of the
// read's status, like any other sample. A status that is not Good in the
// server's answer (BadNotWritable, BadUserAccessDenied, BadTypeMismatch,
// BadOutOfRange...) is a [*WriteError] naming it, not a refusal: the
// server was asked and answered. Without a session Write fails at once
// with [ErrNotConnected], and nothing is retried: a write is not
// idempotent in general, so the caller decides. [Source.WriteNode] is the
// lower-level write for Go programs: the same conversion, without the
// rules of the configuration and without the read-back.
//
// # Concurrency
//
// A Source's Run is called once; Write, WriteNode, Stats and Health are safe to
// call from other goroutines while it runs. Every goroutine Run starts has ended when
// Run returns.
package opcua
