// Package bridge is the core of m2mbridge: the [Sample] stream that field
// devices produce and the pipeline that delivers it, without loss, to
// pluggable sinks.
//
// A [Sample] is one reading of one point of one source, with a typed [Value]
// (float64, int64, uint64, bool or string, held without boxing), a unit, a
// timestamp and a [Quality]. Its JSON encoding ([AppendJSON], [DecodeJSON])
// is the one the JSON-lines, MQTT and HTTP sinks write; the batch layout
// ([AppendBatchJSON], [NextBatch], [DecodeBatchJSON], with the units in a
// metadata message, [AppendMetaJSON]) puts one source's poll cycle in one
// message, for the MQTT and NATS sinks' layout: batch.
//
// A [Source] (a polled Modbus device, an OPC UA subscription) emits samples
// into an [Emitter]; a [Sink] writes batches somewhere. A [Bridge] runs any
// number of sources into any number of sinks. Each sink gets its own bounded
// queue and writer goroutine, so one slow or dead sink never stalls the
// sources or the other sinks; what happens when a queue is full is an
// explicit [Overflow] policy (block, drop the oldest with a counter, or spool
// to disk through a [Spool]); batches are cut by count and linger time,
// and a busy writer is woken at most once per millisecond (see
// [SinkOptions].Linger);
// failed writes are retried with exponential backoff and jitter, and only the
// failed samples of a partial failure ([BatchError]) are retried; shutdown
// drains within a deadline and reports what was left. [Bridge.Stats] counts
// every sample accepted, delivered, retried, rejected, dropped and spooled.
//
// # Queues, losses and health: one owner
//
// The Bridge owns every queue and counts every loss. A sink's queue is a
// ring in memory or its spool; a source that must not block (an OPC UA
// subscription) gets a bounded inbox of its own ([Bridge.AddSourceWith],
// [SourceOptions]) with its own overflow policy. Fan-out offers each batch to
// every sink: one sink's failure (a full queue under a drop policy, a spool
// that cannot store) never stops delivery to the others. A spool that cannot
// store (a full disk, a file-size limit) is that sink's failure: the sink is
// reported down with the OS error, logged once, counted in
// [SinkStats].SpoolFailed, and its samples are kept in a memory fallback of
// QueueSize samples (dropping the oldest, counted, when that fills too)
// until the spool stores again; the sources are not blocked.
//
// Each sink's counters are taken at one instant and add up at every
// snapshot:
//
//	Accepted + Replayed = Delivered + Rejected + Failed + Dropped + Aborted + Left + Queued + InFlight
//
// Replayed is the spool's backlog from an earlier run; Aborted counts samples
// whose Write the drain deadline cut off (the sink may have delivered them);
// a spool batch cut off that way stays in the spool, uncounted, for the next
// run. A sample offered while the bridge was shutting down, or while a
// blocked emitter's context ended, is Refused. Each source counts Emitted =
// Suppressed + Forwarded + Dropped + Left + Queued + InFlight (see report by
// exception below; the last four for its inbox).
//
// # Report by exception
//
// A source's samples can pass through report by exception on their way
// from its Emit to its inbox or the sinks ([SourceOptions].Report, with
// per-point overrides in [SourceOptions].PointReport): a number is reported
// when it moves beyond a deadband (absolute, or a percentage of the last
// reported value or of a range) from the last reported value, or on any
// change; a string or bool on change; and, whatever the rule, the first
// sample of each point after the Bridge starts, every change of quality,
// status code or reason (so the first good sample after a reconnect), and a
// sample when the point's heartbeat is due. The rest are suppressed and
// counted in [SourceStats].Suppressed; see [Report]. It is one stage of the
// Bridge, the same for every source; it applies to sources added with
// [Bridge.AddSourceWith], not to samples pushed with [Bridge.Emit].
// Suppressed samples take no sequence number, so a source's reported
// samples are numbered without gaps and a gap downstream is a loss. The
// filter's state (the last reported sample of each point) lives in memory
// for one run, at most [MaxReportPoints] points per source; samples of
// points beyond that pass unfiltered, counted in [SourceStats].Unfiltered.
// In steady state it allocates nothing per sample.
//
// The state is also forgotten when a source that reports its health
// ([HealthReporter]) comes up again (its Health is Up with a new Since: a
// reconnect, or a new Run): the first sample of each point after that is
// reported, whatever its value, even when no Bad sample came in between.
//
// A sink can take every sample instead of the reported ones
// ([SinkOptions].Unfiltered): a local file that keeps everything beside a
// metered link that takes exceptions only. The samples held back reach it
// with Seq 0, so its numbered samples are exactly the other sinks' stream;
// they are counted in [SourceStats].Suppressed, not in Forwarded, so the
// source's counters add up as before, and such a sink is offered
// Forwarded + Suppressed samples.
//
// The Bridge is the one owner of retries: a sink reports an error, marked
// [Permanent] when the data itself is bad (the samples are then kept in the
// sink's [DeadLetter], never just deleted) or with [RetryAfter] when the
// server said when to come back; it does not loop. A source reports its own
// health ([HealthReporter]), which [Bridge.Stats] carries; nobody infers it
// from the samples.
//
// Every setting that a configuration file fills has a Validate method that
// returns [*FieldError] values with YAML key paths ([SinkOptions.Validate],
// [Retry.Validate], [SourceOptions.Validate]), and enumerations decode from
// text ([Overflow.UnmarshalText]).
//
// Package bridge imports no broker client: sinks that need one live in their
// own packages (bridge/mqtt, bridge/nats, ...). The JSON-lines sink
// ([NewJSONLines]) is here.
//
// All exported functions and methods are safe for concurrent use, except
// where a type's documentation says otherwise (a Sink is called by one
// goroutine at a time).
package bridge
