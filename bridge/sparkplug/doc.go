// Package sparkplug makes an m2mbridge bridge a Sparkplug B edge node
// (Eclipse Sparkplug 3.0.0): [Sink] is a [bridge.Sink] whose sources are
// Sparkplug devices and whose points are their metrics. It announces the
// devices with births, publishes their changes as DDATA, says when the edge
// node or a device dies, answers rebirth requests, turns DCMD into writes
// through the bridge, waits for a primary host application, and replays
// what the bridge held while it was away as historical data. The sections
// below cite the spec's chapters (4 Topics and Messages, 5 Operational
// Behavior, 6 Payloads).
//
//	sinks:
//	  - sparkplug:
//	      url: tcp://127.0.0.1:1883    # and every connection key of the mqtt sink: version, client_id,
//	                                   # username + password_env/password_file, TLS files, keep_alive, ...
//	      group_id: plant1             # required
//	      edge_node_id: gw1            # required
//	      state_dir: ./state           # required: keeps the bdSeq across restarts
//	      primary_host_id: scada       # optional: born only while spBv1.0/STATE/scada says online
//	      aliases: true                # the default; false sends names in DDATA
//	      commands: true               # DCMD writes through the bridge; false (default) refuses them
//	      send_unchanged: false        # the default: DDATA carries changed metrics only
//	    overflow: spool                # store-and-forward: keep what the broker or host missed
//
// # Session (5.4, 5.5)
//
// Each MQTT connection is one Sparkplug session. Before each CONNECT the
// edge node takes the next bdSeq (0 on a fresh state_dir, then one more per
// CONNECT, 255 followed by 0) and writes it atomically to state_dir, so a
// restart never reuses the last session's value (an attempt that fails
// uses one too: the value is saved before the CONNECT is sent). The CONNECT has Clean
// Session (MQTT 5: Clean Start, session expiry 0) and the Will: NDEATH on
// spBv1.0/{group}/NDEATH/{edge}, QoS 1, not retained, with the bdSeq as an
// Int64 metric. The edge node subscribes to its NCMD and DCMD topics (and
// the primary host's STATE) at QoS 1, then publishes the NBIRTH (QoS 0,
// seq 0) with bdSeq, Node Control/Rebirth (Boolean false, no alias), Node
// Info/Version (from the build information) and Node Info/Spool Depth (the
// samples waiting in this sink's queue or spool, sent again as NDATA when
// it changes, at most once a second), and one DBIRTH per device (4.2.1.1,
// 4.2.2.1, 6.4.19, 6.4.20). When the connection is lost
// the broker publishes the Will; the edge node reconnects with back-off
// (up to max_reconnect_interval) and a new bdSeq. [Sink.Close] publishes
// the NDEATH itself (QoS 1) and then disconnects cleanly. [Topic],
// [ParseTopic], [StateTopic] and [CheckID] are the topic rules (4.1).
//
// The connection is made with the MQTT sink's settings and code
// ([github.com/m2mbridge/m2mbridge/bridge/mqtt.Config.ClientOptionsV3] and
// ClientConfigV5: paho.mqtt.golang for 3.1.1, paho.golang for 5), each
// connection a client of its own that does not reconnect by itself,
// because the next connection needs a new Will.
//
// # Births, data and seq (4.2.2, 5.16, 6.4.5, 6.4.6)
//
// A device is born with every metric it has: name, alias (unique across
// the edge node, stable per name for the process's life), datatype, the
// engineering unit as the property "engUnit" (Ignition's key), the
// "Quality" property, and its last value, or is_null when none is known.
// The first sample of a new device or metric (re)births its device with
// all its metrics, the sample being the metric's value in the birth; a
// metric whose value changes kind is reborn with its new datatype. Samples
// of born devices go out as DDATA, one message per device per Write (more
// when a batch holds a metric twice, or over 1000 metrics), each metric by
// alias with its own timestamp (the sample's time in ms), its value and
// its Quality. DDATA carries changes (1.5, 5.8): a sample whose value,
// quality and reason equal what the host already has for its metric, from
// the birth or the last DDATA of the session, is not sent (counted in
// [Stats].Unchanged); a Sparkplug host keeps a metric's value until a
// DDATA, DDEATH or NDEATH says otherwise. send_unchanged: true sends every
// sample the bridge forwards. Which changes are worth sending (a deadband,
// a heartbeat) is the bridge's report-by-exception stage's to decide (a
// device's `report:`); historical samples are always sent. DDATA metrics carry
// their datatype although 6.4.6 says they SHOULD NOT: Eclipse Tahu's
// decoders need it to decode a value. seq runs 0–255 and wraps across
// NBIRTH (0), DBIRTH, NDATA, DDATA and DDEATH; NDEATH has none.
//
// Datatypes (6.4.16, 6.4.17): a Modbus point's declared type gives it
// (float32 → Float, int16 → Int16, uint32 → UInt32, ...; found through the
// bridge, [bridge.Bridge.Source]); otherwise, and for a scaled point, the
// value's kind: float → Double, int → Int64, uint → UInt64, bool → Boolean,
// string → String. Nothing is truncated or wrapped: a value that does not
// fit its datatype fails permanently, unless the sample is Bad, which is
// then sent null with its Quality. A metric seen only without a value is
// announced as a null String until its first value. UInt32 is sent in
// int_value; the decoders in the tests accept long_value too, as the
// reference encoders use.
//
// Quality codes (6.4.9.1): Good is 192 and Bad 0, as the spec says;
// Uncertain is 64, the OPC UA convention issue 13 asks for, so that an
// Uncertain reading is told apart from a good one. The spec lists only 0,
// 192 and 500 (STALE), and its TCK assertion
// tck-id-payloads-propertyset-quality-value-value requires one of them, so a
// strict host application may refuse 64: this is a deliberate deviation.
//
// A source is a device_id when its name can be a topic element; otherwise
// + / # and U+0000 (and bytes of invalid UTF-8) become '_' ([DeviceID], as
// the MQTT sink does in topics). Two sources with one device_id are refused.
//
// # Device death (5.6, 5.7)
//
// The edge node reads its sources' health from the bridge (a
// [bridge.HealthReporter] source, such as a Modbus device, through
// [bridge.Bridge.Stats], every 250 ms): a born device whose source reports
// it down after its birth gets a DDEATH; its Bad samples from then on are
// kept as the metrics' last values but not published (nothing may follow a
// DDEATH but a DBIRTH; [Stats].Absorbed counts them); when the source is up
// again, or a sample that is not Bad comes, the device is born again. A
// device whose source is down before its first birth is born when it comes
// up. Sources without health never die.
//
// How the sink gets the bridge: [Sink] implements [bridge.BridgeUser], so
// [bridge.Bridge.AddSink] hands it the bridge and its sink name ([Sink.UseBridge]);
// a program that runs it otherwise calls [Sink.Use] with any [Host]. The
// bridge knows nothing of MQTT.
//
// # Commands (4.2.1.4, 4.2.2.4, 5.17)
//
// NCMD with Node Control/Rebirth = true republishes the NBIRTH (same bdSeq,
// seq 0) and every DBIRTH without reconnecting; no data goes out in
// between (the births hold the lock Write takes). A DCMD's metrics, by name
// or by alias, are written one by one through [bridge.Bridge.Write] when
// commands is true: the source's rules apply (writable, min/max, exact
// type), the read-back sample flows back through the bridge and out as
// DDATA. A DCMD to a metric that is not writable, out of range, of the
// wrong datatype, unknown, or any DCMD while commands is false, is refused
// with the reason logged and counted ([Stats].CommandsRefused), never
// written. DCMDs wait in a queue of 64, NCMDs in another of 64; those
// beyond are dropped and counted ([Stats].CommandsDropped, EventsDropped),
// with a log line at most every 10s.
//
// # Primary host (5.4, 4.2.3)
//
// With primary_host_id the edge node subscribes to
// spBv1.0/STATE/{primary_host_id} and is born only once a STATE with
// "online": true arrives. A STATE is never dropped: the latest one not
// yet handled waits in a slot of its own, replaced by a newer one. A STATE
// whose timestamp is older than the last one taken is ignored (an equal
// one is taken: a host's Will carries its birth's timestamp). When the host goes offline the edge node publishes
// its NDEATH, disconnects and connects again to wait; meanwhile Write fails
// with [ErrPrimaryHostOffline] (retriable), so the bridge keeps the samples
// in its queue, or in the spool with overflow: spool.
//
// # Store-and-forward (5.16, 6.4.6 is_historical)
//
// Samples the broker or the primary host missed stay in the bridge (Write
// fails while the edge node is not born; with overflow: spool they survive
// a restart, even a kill -9). After the births the bridge replays them in
// order; a sample measured before the current connection's NBIRTH is sent
// with is_historical = true, because it was held while the edge node was
// away. On the first connection, made at once, the line is the moment the
// sink was made instead, so that what was measured while it connected is
// live and a spool's backlog from an earlier run is historical. Such a
// sample is never a birth's value (a birth holds current values): a DBIRTH
// carries each metric's last live value, or null for a metric that has
// none, and the historical samples follow it as DDATA. The births after an
// outage carry the live values last published before it. A device
// clock behind the gateway's (an OPC UA source timestamp) makes its live
// samples look historical after a reconnection; the rule trusts Sample.Time.
//
// What cannot be kept: Sparkplug publishes data at QoS 0 (4.2.2.2), so a
// Write returns once its messages are handed to the connection, and what
// was in flight when a connection breaks is lost with it; the host
// application sees the NDEATH and marks the edge node's metrics stale, and
// the next births carry the last values. Everything the broker could not
// be handed (Write failing) is kept.
//
// # Concurrency
//
// A Sink's methods may be called from any goroutine; Write and Close
// follow the [bridge.Sink] contract. It owns two goroutines (the session,
// the commands), started by the first Connect or Write and ended by Close.
// The payload types are generated from Eclipse Tahu's sparkplug_b.proto in
// the internal package sppb, which is EPL-2.0 (see its LICENSE); this
// package is MIT. Only this package links protobuf: the core bridge and the
// adapters do not.
package sparkplug
