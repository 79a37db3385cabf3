package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
)

// Errors a publish may fail with, inside a [*bridge.BatchError].
var (
	// ErrNotConnected means the connection to the server was down when the
	// sample was published; the sink reconnects by itself.
	ErrNotConnected = errors.New("nats: not connected")
	// ErrAckTimeout means JetStream did not acknowledge a publish within
	// Config.AckTimeout. The stream may still have stored it.
	ErrAckTimeout = errors.New("nats: publish not acknowledged in time")
)

// Sink publishes samples to NATS, one message per sample with the JSON
// encoding of [bridge.AppendJSON] as payload, with core NATS or JetStream.
// It implements [bridge.Sink] and [bridge.Connector].
type Sink struct {
	set *settings

	mu     sync.Mutex // guards nc, js and closed
	nc     *nats.Conn
	js     jetstream.JetStream
	closed bool

	subjects *tmpl.Cache // used by Write only
	scratch  []byte      // core NATS payload buffer, used by Write only
	batch    *batcher    // layout batch, used by Write only
}

var (
	_ bridge.Sink      = (*Sink)(nil)
	_ bridge.Connector = (*Sink)(nil)
)

// New validates cfg and returns a Sink. It does not dial: the connection is
// made by [Sink.Connect] or by the first Write. Every problem with cfg is
// reported at once: what [Config.Validate] reports and what is wrong with
// the TLS files and creds_file, each a *bridge.FieldError
// ([bridge.FieldErrors] walks them) in an error whose text puts "nats: "
// before each.
func New(cfg Config) (*Sink, error) {
	set, err := cfg.build()
	if err != nil {
		return nil, cfgcheck.Wrap("nats", err)
	}
	s := &Sink{set: set, subjects: tmpl.NewCache(set.template.Template)}
	if set.Layout == LayoutBatch {
		s.batch = newBatcher(set)
	}
	return s, nil
}

// Subject returns the subject a sample of the given source and point is
// published to.
func (s *Sink) Subject(source, point string) string {
	return string(s.set.template.appendSubject(nil, source, point))
}

// StreamSubject returns the subject filter that covers every subject of the
// template ("m2m.*.*" for the default); CreateStream creates the stream with
// it.
func (s *Sink) StreamSubject() string { return s.set.template.wildcard() }

// Connect dials the server and, for JetStream with a Stream, checks that
// the stream exists and takes the template's subjects, or creates it. Once connected, the sink reconnects by
// itself whenever the connection is lost. Calling Connect again while
// connected does nothing. The dial honours ctx's deadline, not its
// cancellation: nats.go's Connect takes no context, so it is bounded by
// ConnectTimeout.
func (s *Sink) Connect(ctx context.Context) error {
	_, _, err := s.conn(ctx)
	return err
}

// conn returns the connection, dialling it first if needed.
func (s *Sink) conn(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, fmt.Errorf("nats: %w", bridge.ErrClosed)
	}
	if s.nc != nil {
		return s.nc, s.js, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("nats: connect: %w", err)
	}
	set := s.set
	timeout := set.ConnectTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(dl)), time.Millisecond)
	}
	opts := natsOptions(set, timeout)
	nc, err := nats.Connect(strings.Join(set.servers, ","), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("nats: connect %s: %w", redact.URL(strings.Join(set.servers, ",")), err)
	}
	var js jetstream.JetStream
	if set.JetStream {
		js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(set.MaxAckPending))
		if err == nil && set.Stream != "" {
			err = s.ensureStream(ctx, js)
		}
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	s.nc, s.js = nc, js
	return nc, js, nil
}

// natsOptions are the connection options of set, each attempt bounded by
// timeout; shared by the sink and the command source.
func natsOptions(set *settings, timeout time.Duration) []nats.Option {
	opts := []nats.Option{
		nats.Name(set.Name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(set.ReconnectWait),
		// No buffering while reconnecting: a publish then fails at once,
		// so the caller knows and nothing piles up in memory.
		nats.ReconnectBufSize(-1),
		nats.NoCallbacksAfterClientClose(),
	}
	switch {
	case set.CredsFile != "":
		opts = append(opts, nats.UserCredentials(set.CredsFile))
	case set.Token != "":
		opts = append(opts, nats.Token(set.Token))
	case set.Username != "":
		opts = append(opts, nats.UserInfo(set.Username, set.Password))
	}
	if set.tls != nil {
		opts = append(opts, nats.Secure(set.tls.Clone()))
	}
	return opts
}

// ensureStream checks that the configured stream exists, creating it when
// asked to.
func (s *Sink) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	st, err := js.Stream(ctx, s.set.Stream)
	switch {
	case err == nil:
		for _, want := range s.set.subjects() {
			covered := false
			for _, f := range st.CachedInfo().Config.Subjects {
				covered = covered || subjectCovers(f, want)
			}
			if !covered {
				// A setting to fix, not bad data: the samples stay queued.
				return fmt.Errorf("nats: stream %q takes subjects %q, which do not cover the template's %q", s.set.Stream, st.CachedInfo().Config.Subjects, want)
			}
		}
		return nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("nats: stream %q: %w", s.set.Stream, err)
	case !s.set.CreateStream:
		return fmt.Errorf("nats: stream %q does not exist (set create_stream to create it): %w", s.set.Stream, err)
	}
	_, err = js.CreateStream(ctx, s.set.streamConfig())
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("nats: create stream %q with subjects %q: %w", s.set.Stream, s.set.subjects(), err)
	}
	return nil
}

// subjectCovers reports whether the subject filter f matches every subject
// the filter p matches ('*' one token, '>' the rest), as a stream's subjects
// must cover the template's.
func subjectCovers(f, p string) bool {
	ft, pt := strings.Split(f, "."), strings.Split(p, ".")
	for i, tok := range ft {
		switch {
		case tok == ">":
			return i < len(pt)
		case i >= len(pt):
			return false
		case tok == "*":
			if pt[i] == ">" {
				return false
			}
		case tok != pt[i]:
			return false
		}
	}
	return len(ft) == len(pt)
}

// Write publishes every sample of batch. With JetStream it waits until each
// is acknowledged by the stream, keeping up to MaxAckPending in flight, and
// returns a [*bridge.BatchError] naming exactly the samples that failed
// (with [ErrNotConnected], [ErrAckTimeout], the server's error or ctx's).
// With core NATS it ends with a flush: nil means the server received every
// sample; a failed flush is a plain error (none may be assumed delivered).
func (s *Sink) Write(ctx context.Context, batch []bridge.Sample) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nats: write: %w", err)
	}
	nc, js, err := s.conn(ctx)
	if err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	if s.batch != nil {
		return s.batch.write(ctx, s, nc, js, batch)
	}
	if js != nil {
		return s.writeJetStream(ctx, js, batch)
	}
	return s.writeCore(ctx, nc, batch)
}

func (s *Sink) writeCore(ctx context.Context, nc *nats.Conn, batch []bridge.Sample) error {
	var be *bridge.BatchError
	for i := range batch {
		smp := &batch[i]
		// nc.Publish copies the payload into its buffer, so one scratch
		// buffer serves every sample.
		s.scratch = bridge.AppendJSON(s.scratch[:0], smp)
		if err := nc.Publish(s.subjects.Get(smp.Source, smp.Point), s.scratch); err != nil {
			if be == nil {
				be = bridge.NewBatchError()
			}
			be.Fail(i, publishError(err))
		}
	}
	if cap(s.scratch) > 64<<10 {
		s.scratch = nil // do not keep one huge sample's buffer
	}
	if be != nil && len(be.Failed) == len(batch) {
		return be // nothing was sent; the reasons say why
	}
	if !nc.IsConnected() {
		// The connection went down during the batch: what was buffered
		// for it is lost, so none of the batch may be assumed delivered.
		return fmt.Errorf("nats: write: %w", ErrNotConnected)
	}
	fctx, cancel := context.WithTimeout(ctx, s.set.AckTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("nats: write: flush: %w", err)
	}
	if be != nil {
		return be
	}
	return nil
}

func (s *Sink) writeJetStream(ctx context.Context, js jetstream.JetStream, batch []bridge.Sample) error {
	// The payloads share one buffer that is never reused: the client holds
	// a message until its acknowledgement, to resend it on "no responders".
	buf := make([]byte, 0, 160*len(batch))
	msgs := make([]outMsg, len(batch))
	for i := range batch {
		smp := &batch[i]
		start := len(buf)
		buf = bridge.AppendJSON(buf, smp)
		msgs[i] = outMsg{idx: i, n: 1, subject: s.subjects.Get(smp.Source, smp.Point), data: buf[start:len(buf):len(buf)]}
	}
	var be *bridge.BatchError
	s.publishJetStream(ctx, js, msgs, func(i, n int, err error) {
		if be == nil {
			be = bridge.NewBatchError()
		}
		for j := i; j < i+n; j++ {
			be.Fail(j, err)
		}
	})
	if be != nil {
		return be
	}
	return nil
}

// outMsg is one message to publish: the samples [idx, idx+n) of a batch.
type outMsg struct {
	idx, n  int
	subject string
	data    []byte
}

// publishJetStream publishes msgs to JetStream, keeping at most
// MaxAckPending unacknowledged, and calls fail for each one that failed.
func (s *Sink) publishJetStream(ctx context.Context, js jetstream.JetStream, msgs []outMsg, failMsg func(idx, n int, err error)) {
	// Writes do not overlap, so anything pending now is an acknowledgement
	// an earlier Write stopped waiting for (timed out or cancelled). It
	// would stay pending in the client and count against MaxAckPending:
	// drop it. This is done here rather than when that Write gave up
	// because nats.go v1.37's CleanupPublisher, called right after the
	// first asynchronous publish, can strand the goroutine that publish
	// started (it may not have read its status channel yet).
	if js.PublishAsyncPending() > 0 {
		js.CleanupPublisher()
	}
	if len(msgs) == 0 {
		return
	}
	fail := func(k int, err error) { failMsg(msgs[k].idx, msgs[k].n, err) }
	type pend struct {
		idx      int
		paf      jetstream.PubAckFuture
		deadline time.Time
	}
	ring := make([]pend, min(s.set.MaxAckPending, len(msgs)))
	head, n := 0, 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	ctxDone := false

	// wait completes the oldest outstanding publish.
	wait := func() {
		p := ring[head]
		ring[head] = pend{}
		head = (head + 1) % len(ring)
		n--
		if ctxDone {
			select {
			case <-p.paf.Ok():
			case err := <-p.paf.Err():
				fail(p.idx, publishError(err))
			default:
				fail(p.idx, ctx.Err())
			}
			return
		}
		timer.Reset(time.Until(p.deadline))
		select {
		case <-p.paf.Ok():
		case err := <-p.paf.Err():
			fail(p.idx, publishError(err))
		case <-timer.C:
			fail(p.idx, ErrAckTimeout)
		case <-ctx.Done():
			ctxDone = true
			fail(p.idx, ctx.Err())
		}
		timer.Stop()
	}

	for i := range msgs {
		if ctxDone || ctx.Err() != nil {
			ctxDone = true
			fail(i, ctx.Err())
			continue
		}
		if n == len(ring) {
			wait()
			if ctxDone {
				fail(i, ctx.Err())
				continue
			}
		}
		msg := &nats.Msg{Subject: msgs[i].subject, Data: msgs[i].data}
		paf, err := js.PublishMsgAsync(msg)
		if err != nil {
			fail(i, publishError(err))
			continue
		}
		ring[(head+n)%len(ring)] = pend{idx: i, paf: paf, deadline: time.Now().Add(s.set.AckTimeout)}
		n++
	}
	for n > 0 {
		wait()
	}
}

// publishError classifies an error of one publish.
func publishError(err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		// One message is one sample: this sample alone is larger than
		// the server's max_payload.
		return bridge.Permanent(fmt.Errorf("nats: the sample's message is larger than the server's max_payload: %w", err))
	case errors.Is(err, nats.ErrBadSubject):
		return bridge.Permanent(fmt.Errorf("nats: the subject made from the sample's names is invalid: %w", err))
	case errors.Is(err, nats.ErrReconnectBufExceeded), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return err
}

// Close closes the connection and ends the sink's goroutines. Every Write
// has waited for its samples, so nothing is left to flush. Every later call
// returns an error wrapping [bridge.ErrClosed].
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("nats: %w", bridge.ErrClosed)
	}
	s.closed = true
	if s.nc == nil {
		return nil
	}
	// Closing the connection also ends the JetStream publisher's
	// goroutine (it gets the CLOSED status).
	s.nc.Close()
	return nil
}
