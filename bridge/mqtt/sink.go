package mqtt

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
)

// Errors a publish may fail with, inside a [*bridge.BatchError].
var (
	// ErrNotConnected means the sink had no connection to the broker when it
	// came to publish a sample; it reconnects by itself.
	ErrNotConnected = errors.New("mqtt: not connected")
	// ErrAckTimeout means a publish was not acknowledged within
	// Config.AckTimeout. The broker may still have received it.
	ErrAckTimeout = errors.New("mqtt: publish not acknowledged in time")
)

// Sink publishes samples to an MQTT broker, one message per sample with the
// JSON encoding of [bridge.AppendJSON] as payload. It implements
// [bridge.Sink] and [bridge.Connector].
type Sink struct {
	set *settings

	mu     sync.Mutex // guards cli and closed
	cli    client
	closed bool

	topics *tmpl.Cache // used by Write only
	batch  *batcher    // layout batch; used by Write only
}

var (
	_ bridge.Sink      = (*Sink)(nil)
	_ bridge.Connector = (*Sink)(nil)
)

// client is one protocol version's publisher.
type client interface {
	// connect dials and waits until the connection is up or the first
	// attempt failed. After the first success the client reconnects by
	// itself.
	connect(ctx context.Context) error
	// publishBatch publishes every item, keeping at most MaxInFlight
	// unacknowledged, and calls fail for each one that failed. It returns
	// when every item is acknowledged or failed.
	publishBatch(ctx context.Context, items []item, fail func(i int, err error))
	// close publishes the status "offline", disconnects and ends the
	// client's goroutines.
	close(ctx context.Context) error
	// generation counts the connections made so far.
	generation() uint64
}

// item is one message to publish.
type item struct {
	idx     int // in the batch (of a batch message: its first sample)
	topic   string
	payload []byte
	// retain overrides Config.Retain (metadata messages are retained).
	retain bool
	// contentType is the MQTT 5 Content Type, "" for none.
	contentType string
}

// New validates cfg and returns a Sink. It does not dial: the connection is
// made by [Sink.Connect] or by the first Write. Every problem with cfg is
// reported at once: what [Config.Validate] reports and what is wrong with
// the TLS files, each a *bridge.FieldError ([bridge.FieldErrors] walks them)
// in an error whose text puts "mqtt: " before each.
func New(cfg Config) (*Sink, error) {
	set, err := cfg.build()
	if err != nil {
		return nil, cfgcheck.Wrap("mqtt", err)
	}
	s := &Sink{set: set, topics: tmpl.NewCache(set.template.Template)}
	if set.Layout == LayoutBatch {
		s.batch = newBatcher(set)
	}
	return s, nil
}

// Topic returns the topic a sample of the given source and point is
// published to.
func (s *Sink) Topic(source, point string) string {
	return string(s.set.template.appendTopic(nil, source, point))
}

// Connect dials the broker and returns once the connection is up (the
// birth message, when Config.StatusTopic is set, is sent right after), or
// with the error of the attempt. Once connected, the sink reconnects by itself whenever the
// connection is lost. Calling Connect again while connected does nothing.
func (s *Sink) Connect(ctx context.Context) error {
	cli, err := s.client()
	if err != nil {
		return err
	}
	if err := cli.connect(ctx); err != nil {
		return fmt.Errorf("mqtt: connect %s: %w", redactURL(s.set.url), err)
	}
	return nil
}

func (s *Sink) client() (client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("mqtt: %w", bridge.ErrClosed)
	}
	if s.cli == nil {
		if s.set.Version == V5 {
			s.cli = newV5(s.set)
		} else {
			s.cli = newV3(s.set)
		}
	}
	return s.cli, nil
}

// Write publishes every sample of batch and waits until each is
// acknowledged (QoS 1 and 2) or handed to the connection (QoS 0). It
// returns nil when all were, a [*bridge.BatchError] naming exactly the
// samples that failed otherwise (with [ErrNotConnected], [ErrAckTimeout], the
// broker's reason, or ctx's error), or a plain error when nothing could be
// published. A sample whose topic would be too long fails permanently.
func (s *Sink) Write(ctx context.Context, batch []bridge.Sample) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqtt: write: %w", err)
	}
	cli, err := s.client()
	if err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	if err := cli.connect(ctx); err != nil {
		return fmt.Errorf("mqtt: write: connect %s: %w", redactURL(s.set.url), err)
	}
	if s.batch != nil {
		return s.batch.write(ctx, cli, s.topics, batch)
	}

	var (
		failMu sync.Mutex
		be     *bridge.BatchError
	)
	fail := func(i int, err error) {
		failMu.Lock()
		if be == nil {
			be = bridge.NewBatchError()
		}
		be.Fail(i, err)
		failMu.Unlock()
	}

	// The payloads share one buffer that is never reused: the client may
	// hold a payload after Write returns, to resend it on reconnection.
	buf := make([]byte, 0, 160*len(batch))
	items := make([]item, 0, len(batch))
	for i := range batch {
		smp := &batch[i]
		topic := s.topics.Get(smp.Source, smp.Point)
		if len(topic) > maxTopicLen {
			fail(i, bridge.Permanent(fmt.Errorf("mqtt: topic for source %q point %q is %d bytes, more than MQTT allows (%d)", smp.Source, smp.Point, len(topic), maxTopicLen)))
			continue
		}
		start := len(buf)
		buf = bridge.AppendJSON(buf, smp)
		items = append(items, item{idx: i, topic: topic, payload: buf[start:len(buf):len(buf)]})
	}
	cli.publishBatch(ctx, items, fail)

	if be == nil {
		return nil
	}
	return be
}

// Close publishes "offline" to the status topic (when set), disconnects
// cleanly and ends the sink's goroutines, within ctx. Every later call
// returns an error wrapping [bridge.ErrClosed].
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("mqtt: %w", bridge.ErrClosed)
	}
	s.closed = true
	cli := s.cli
	s.mu.Unlock()
	if s.batch != nil {
		s.batch.close()
	}
	if cli == nil {
		return nil
	}
	if err := cli.close(ctx); err != nil {
		return fmt.Errorf("mqtt: close: %w", err)
	}
	return nil
}
