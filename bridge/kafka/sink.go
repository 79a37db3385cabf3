package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
)

// ErrTopic is reported, wrapped in [bridge.Permanent], for a sample whose
// topic is not a valid Kafka topic name (empty, "." or "..", or longer than
// 249 characters) after the template was filled in.
var ErrTopic = errors.New("kafka: invalid topic name")

// ErrDeliveryTimeout is returned (retriable) by a Write whose records were
// not all acknowledged within Config.DeliveryTimeout, typically because no
// broker can be reached. The records may still be delivered later.
var ErrDeliveryTimeout = errors.New("kafka: records not acknowledged within delivery_timeout")

// Sink produces samples to Kafka with an idempotent franz-go producer. See
// the package documentation for the record layout and the error mapping.
type Sink struct {
	s    *settings
	opts []kgo.Opt

	closed atomic.Bool
	mu     sync.Mutex  // serialises Write, Connect and Close; guards cl
	cl     *kgo.Client // made on first use

	produced, rejected atomic.Uint64
}

var (
	_ bridge.Sink      = (*Sink)(nil)
	_ bridge.Connector = (*Sink)(nil)
	_ bridge.Flusher   = (*Sink)(nil)
)

// Stats counts what a Sink did with the samples it was given.
type Stats struct {
	// Produced counts samples the brokers acknowledged.
	Produced uint64
	// Rejected counts samples reported as permanently failed.
	Rejected uint64
}

// New checks cfg and returns a Sink; it reports every problem of cfg at
// once: what [Config.Validate] reports and what is wrong with the TLS
// files, each a *bridge.FieldError ([bridge.FieldErrors] walks them) in an
// error whose text puts "kafka: " before each. It does no network I/O (it
// reads the TLS files cfg names): the client is made, and dials, on Connect
// or the first Write.
func New(cfg Config) (*Sink, error) {
	s, err := cfg.build()
	if err != nil {
		return nil, cfgcheck.Wrap("kafka", err)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.Brokers...),
		kgo.ClientID(s.ClientID),
		// Idempotence (kgo's default) needs acks from all in-sync
		// replicas; it keeps each partition in order and without
		// duplicates across the producer's own retries.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(s.MaxBufferedRecords),
		kgo.RecordDeliveryTimeout(s.DeliveryTimeout),
		kgo.ProducerLinger(0), // Write hands over whole batches
		kgo.ProducerBatchMaxBytes(int32(s.MaxMessageBytes)),
	}
	switch s.Compression {
	case "none":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	}
	if s.AutoCreateTopics {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	switch s.SASLMechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()))
	}
	if s.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(s.tls))
	}
	return &Sink{s: s, opts: opts}, nil
}

// Stats returns the counters of k. It is safe to call at any time.
func (k *Sink) Stats() Stats {
	return Stats{Produced: k.produced.Load(), Rejected: k.rejected.Load()}
}

// client returns the franz-go client, making it on first use. k.mu is held.
func (k *Sink) client() (*kgo.Client, error) {
	if k.cl != nil {
		return k.cl, nil
	}
	cl, err := kgo.NewClient(k.opts...)
	if err != nil {
		// New checked the settings; whatever is left is not the data's
		// fault, so the samples stay queued.
		return nil, fmt.Errorf("kafka: %w", err)
	}
	k.cl = cl
	return cl, nil
}

// Connect makes the client and checks that a broker answers.
func (k *Sink) Connect(ctx context.Context) error {
	if k.closed.Load() {
		return fmt.Errorf("kafka: connect: %w", bridge.ErrClosed)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	cl, err := k.client()
	if err != nil {
		return err
	}
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: connect: %w", err)
	}
	return nil
}

// writeState collects the outcome of one Write's records. It is separate
// for each Write so that promises still running after a Write gave up (its
// context ended) touch nothing a later Write uses.
type writeState struct {
	left atomic.Int64
	done chan struct{}
	errs []error // by batch index; each written by its own promise only
}

// Write produces one record per sample and waits until the brokers
// acknowledged every one of them, or ctx ends. It returns nil when all were
// acknowledged, a [*bridge.BatchError] naming the samples that failed when
// some did, and a single error when all did. When ctx ends first it returns
// an error wrapping ctx.Err(); records already handed to the client may then
// still be delivered (at-least-once).
func (k *Sink) Write(ctx context.Context, batch []bridge.Sample) error {
	if k.closed.Load() {
		return fmt.Errorf("kafka: write: %w", bridge.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: write: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed.Load() {
		return fmt.Errorf("kafka: write: %w", bridge.ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	cl, err := k.client()
	if err != nil {
		return err
	}
	// franz-go enforces DeliveryTimeout only between requests: while no
	// broker can be reached a record waits for as long as its context
	// lets it. The context bounds the wait.
	pctx, cancel := context.WithTimeoutCause(ctx, k.s.DeliveryTimeout, ErrDeliveryTimeout)
	defer cancel()

	// Records and their bytes are fresh for each Write: the client holds
	// them until their promises run, which may be after Write returned.
	recs := make([]kgo.Record, len(batch))
	size := 0
	for i := range batch {
		size += 2*len(batch[i].Source) + 2*len(batch[i].Point) + len(batch[i].Unit) + len(batch[i].Reason) + 160
		if sv := batch[i].Value; sv.Kind() == bridge.KindString {
			size += len(sv.Str()) + len(sv.Str())/8
		}
	}
	buf := make([]byte, 0, size)
	st := &writeState{done: make(chan struct{}), errs: make([]error, len(batch))}
	st.left.Store(int64(len(batch)))
	finish := func() {
		if st.left.Add(-1) == 0 {
			close(st.done)
		}
	}
	var topics map[string]string // one string per distinct topic
	var tb []byte
	for i := range batch {
		sm := &batch[i]
		r := &recs[i]
		topic := k.s.topic.fixed
		if topic == "" {
			tb = k.s.topic.appendTopic(tb[:0], sm.Source, sm.Point)
			t, ok := topics[string(tb)]
			if !ok {
				if topics == nil {
					topics = make(map[string]string)
				}
				t = string(tb)
				topics[t] = t
			}
			topic = t
		}
		if topic == "" || topic == "." || topic == ".." || len(topic) > maxTopic {
			st.errs[i] = bridge.Permanent(fmt.Errorf("kafka: sample %d (%s/%s): topic %q: %w", i, sm.Source, sm.Point, topic, ErrTopic))
			finish()
			continue
		}
		r.Topic = topic
		start := len(buf)
		buf = append(buf, sm.Source...)
		buf = append(buf, '/')
		buf = append(buf, sm.Point...)
		r.Key = buf[start:len(buf):len(buf)]
		start = len(buf)
		buf = bridge.AppendJSON(buf, sm)
		r.Value = buf[start:len(buf):len(buf)]
		if n := len(r.Key) + len(r.Value) + recordOverhead; n > k.s.MaxMessageBytes {
			st.errs[i] = bridge.Permanent(fmt.Errorf("kafka: sample %d (%s/%s): its record of %d bytes is larger than max_message_bytes (%d): %w",
				i, sm.Source, sm.Point, n, k.s.MaxMessageBytes, kerr.MessageTooLarge))
			finish()
			continue
		}
		// r.Timestamp stays unset (kgo sets it to now): franz-go measures
		// DeliveryTimeout from it, so a sample's own, older time would make
		// a spooled sample time out at once. The sample's time is in the
		// value.
		i := i
		cl.Produce(pctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				st.errs[i] = err
			}
			finish()
		})
	}
	select {
	case <-st.done:
	case <-pctx.Done():
		if ctx.Err() != nil {
			return fmt.Errorf("kafka: write: %w", ctx.Err())
		}
		return fmt.Errorf("%w (%v)", context.Cause(pctx), k.s.DeliveryTimeout)
	}

	var be *bridge.BatchError
	failed, permanent := 0, 0
	var first error
	var recreated []string // topics that failed with UNKNOWN_TOPIC_ID
	for i, err := range st.errs {
		if err == nil {
			continue
		}
		if errors.Is(err, kerr.UnknownTopicID) && !slices.Contains(recreated, recs[i].Topic) {
			recreated = append(recreated, recs[i].Topic)
		}
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			err = fmt.Errorf("%w (%v): %w", ErrDeliveryTimeout, k.s.DeliveryTimeout, err)
		}
		err = k.classify(i, &batch[i], recs[i].Topic, err)
		if first == nil {
			first = err
		}
		failed++
		if bridge.IsPermanent(err) {
			permanent++
		}
		if be == nil {
			be = bridge.NewBatchError()
		}
		be.Fail(i, err)
	}
	// franz-go (v1.22+) produces only to the first instance of a topic:
	// once metadata shows the topic under a new ID (deleted and
	// recreated, or the cluster came back without its data) it fails
	// every record for it with UNKNOWN_TOPIC_ID until the topic is purged
	// from the client. Purging makes the Bridge's retry produce to the
	// new instance; without it the sink would never recover. Every record
	// of this Write is settled, so only records of a Write that gave up
	// earlier (and whose samples the Bridge retries) may be failed by it.
	if len(recreated) > 0 {
		cl.PurgeTopicsFromClient(recreated...)
	}
	k.produced.Add(uint64(len(batch) - failed))
	k.rejected.Add(uint64(permanent))
	switch {
	case failed == 0:
		return nil
	case failed == len(batch) && permanent == 0:
		if ctx.Err() != nil {
			return fmt.Errorf("kafka: write: %w (%w)", ctx.Err(), first)
		}
		return first
	case failed == len(batch) && permanent == failed:
		return first
	}
	return be // some failed, or failures of both kinds
}

// recordOverhead bounds what a record batch adds to a record's key and
// value on the wire (batch header 61 bytes, record length, attributes,
// offset and timestamp deltas, lengths): with it, a record that passes the
// check in Write never exceeds ProducerBatchMaxBytes on its own.
const recordOverhead = 128

// classify wraps the error of record i, marking Permanent only the errors
// that say the record itself is bad: INVALID_RECORD, CORRUPT_MESSAGE and
// INVALID_TOPIC_EXCEPTION (the topic made from the sample's names). Every
// other error keeps the sample for the Bridge to retry, even when Kafka
// marks it not retriable: an authorisation or authentication failure, an
// unsupported version or compression, a policy violation are settings to
// fix, not bad data. MESSAGE_TOO_LARGE for a record that Write found within
// max_message_bytes means the broker's or topic's limit is lower: a
// setting too, so it is retriable with a reason that says so.
// UNKNOWN_TOPIC_ID (the topic of the record was recreated) is retriable
// too, with a reason: Write has purged the old topic from the client.
func (k *Sink) classify(i int, sm *bridge.Sample, topic string, err error) error {
	if bridge.IsPermanent(err) {
		return err
	}
	if errors.Is(err, kgo.ErrClientClosed) {
		return fmt.Errorf("kafka: sample %d (%s/%s): %w (%w)", i, sm.Source, sm.Point, bridge.ErrClosed, err)
	}
	wrapped := fmt.Errorf("kafka: sample %d (%s/%s): %w", i, sm.Source, sm.Point, err)
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.InvalidRecord, kerr.CorruptMessage, kerr.InvalidTopicException:
			return bridge.Permanent(wrapped)
		case kerr.UnknownTopicID:
			return fmt.Errorf("kafka: sample %d (%s/%s): topic %q was deleted and recreated, or the cluster came back without it; the sink forgot the old topic and a retry produces to the new one: %w",
				i, sm.Source, sm.Point, topic, err)
		case kerr.MessageTooLarge, kerr.RecordListTooLarge:
			return fmt.Errorf("kafka: sample %d (%s/%s): the broker refuses records this large, though within max_message_bytes (%d): set max_message_bytes to the topic's max.message.bytes: %w",
				i, sm.Source, sm.Point, k.s.MaxMessageBytes, err)
		}
	}
	return wrapped
}

// Flush waits until every record handed to the client was acknowledged or
// failed. Write already waits for its records, so Flush has work only after
// a Write gave up because its context ended.
func (k *Sink) Flush(ctx context.Context) error {
	if k.closed.Load() {
		return fmt.Errorf("kafka: flush: %w", bridge.ErrClosed)
	}
	k.mu.Lock()
	cl := k.cl
	k.mu.Unlock()
	if cl == nil {
		return nil
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: flush: %w", err)
	}
	return nil
}

// Close flushes what a Write left behind (see Flush) within ctx, then closes
// the client, failing whatever is still buffered. Every later call returns
// an error wrapping [bridge.ErrClosed].
func (k *Sink) Close(ctx context.Context) error {
	if k.closed.Swap(true) {
		return fmt.Errorf("kafka: close: %w", bridge.ErrClosed)
	}
	k.mu.Lock()
	cl := k.cl
	k.cl = nil
	k.mu.Unlock()
	if cl == nil {
		return nil
	}
	var err error
	if cl.BufferedProduceRecords() > 0 {
		if ferr := cl.Flush(ctx); ferr != nil {
			err = fmt.Errorf("kafka: close: records left unflushed: %w", ferr)
		}
	}
	cl.Close()
	return err
}
