// Package sparkplug is the start of a Sparkplug B 3.0 edge node for
// m2mbridge (issue 13): a source becomes a Sparkplug device, a point one of
// its metrics.
//
// # What exists
//
// The package holds the rules of the Sparkplug 3.0.0 specification that are
// pure functions, each with table tests; nothing here connects to a broker
// yet, and the gateway does not know the sink.
//
//   - Topics: [Topic], [ParseTopic], [StateTopic] and [CheckID] —
//     spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}] with the
//     eight edge node and device message types (spec 4.1, 4.2); IDs are valid
//     UTF-8 without + / # (4.1.2, 4.1.4, 4.1.5).
//   - [Config] with yaml tags and [Config.Validate]: group_id, edge_node_id,
//     state_dir, and the MQTT sink's connection keys, checked by
//     [github.com/m2mbridge/m2mbridge/bridge/mqtt.Config.Validate] so that
//     they have one owner.
//   - bdSeq: the value of each MQTT CONNECT, 0 on first use, then one more
//     per connect, 255 followed by 0, written atomically to state_dir before
//     it is used, so that a restart never reuses the last session's value
//     (4.2.1.1.2, 5.4).
//   - seq: 0 on NBIRTH, one more on every later message of the session, 255
//     followed by 0 (6.4.5).
//   - Metrics: the Sparkplug datatype of a point from its value's kind and
//     its declared type (Int16, UInt16, Int32, UInt32, Int64, UInt64, Float,
//     Double, Boolean, String; 6.4.16), the value in the field the spec
//     assigns to the datatype (6.4.17) with nothing truncated or wrapped,
//     is_null for a sample without a value (6.4.6), the sample's time in ms
//     (5.1), and its quality in the "Quality" property, an Int32 (6.4.9.1).
//
// Quality codes: Good is 192 and Bad 0, as the spec says; Uncertain is 64,
// the OPC UA convention issue 13 asks for. The spec lists only 0, 192 and
// 500 (STALE), and its TCK assertion
// tck-id-payloads-propertyset-quality-value-value requires one of them, so a
// strict host application may refuse 64. This is to be settled on the issue
// before the sink ships.
//
// The payload types are generated from Eclipse Tahu's sparkplug_b.proto in
// the internal package sppb, which is EPL-2.0 (see its LICENSE); this
// package is MIT. Only this package links protobuf: the core bridge and the
// adapters do not.
//
// # What is still to come
//
//   - The MQTT session: clean session, the NDEATH Will (QoS 1, not retained,
//     bdSeq as an Int64 metric) and the NBIRTH with the same bdSeq, its
//     Node Control/Rebirth metric and node metrics; then one DBIRTH per
//     device with every metric, alias and engineering unit (4.2, 5.4, 5.6).
//   - The sink: DDATA of changed metrics by alias, aliases unique across the
//     edge node; DDEATH and DBIRTH from the bridge's source health (5.7);
//     NCMD rebirth without reconnecting; DCMD to the write path; graceful
//     NDEATH; primary host STATE (primary_host_id); replay of spooled data
//     with is_historical; the `sparkplug:` sink in the gateway.
//   - Tests against a third-party host application (Eclipse Tahu's
//     sparkplug-payload under Node.js) over Mosquitto, and benchmarks.
//
// Its functions keep no shared state; the types that hold state (the bdSeq
// and seq counters) belong to one session and are not safe for concurrent
// use.
package sparkplug
