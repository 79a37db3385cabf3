// Package bridge is the core of m2mbridge: the [Sample] stream that field
// devices produce and the pipeline that delivers it, without loss, to
// pluggable sinks.
//
// A [Sample] is one reading of one point of one source, with a typed [Value]
// (float64, int64, uint64, bool or string, held without boxing), a unit, a
// timestamp and a [Quality]. Its JSON encoding ([AppendJSON], [DecodeJSON])
// is the one the JSON-lines, MQTT and HTTP sinks write.
//
// A [Source] (a polled Modbus device, an OPC UA subscription) emits samples
// into an [Emitter]; a [Sink] writes batches somewhere. A [Bridge] runs any
// number of sources into any number of sinks. Each sink gets its own bounded
// queue and writer goroutine, so one slow or dead sink never stalls the
// sources or the other sinks; what happens when a queue is full is an
// explicit [Overflow] policy (block, drop the oldest with a counter, or spool
// to disk through a [Spool]); batches are cut by count and linger time;
// failed writes are retried with exponential backoff and jitter, and only the
// failed samples of a partial failure ([BatchError]) are retried; shutdown
// drains within a deadline and reports what was left. [Bridge.Stats] counts
// every sample accepted, delivered, retried, rejected, dropped and spooled.
//
// Package bridge imports no broker client: sinks that need one live in their
// own packages (bridge/mqtt, bridge/nats, ...). The JSON-lines sink
// ([NewJSONLines]) is here.
//
// All exported functions and methods are safe for concurrent use, except
// where a type's documentation says otherwise (a Sink is called by one
// goroutine at a time).
package bridge
