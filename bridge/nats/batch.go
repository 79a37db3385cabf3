package nats

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/m2mbridge/m2mbridge/bridge"
	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
)

// maxBatchPoints bounds the points of one batch message, so that a message
// stays well below the server's max_payload (1 MiB by default): at about
// 60 bytes a point, 2,000 points are some 120 KB.
const maxBatchPoints = 2000

// batcher writes in the batch layout: one message per source and poll
// cycle (bridge.NextBatch, bridge.AppendBatchJSON) and, with a metadata
// subject, the units of each source once per connection and whenever they
// change. Its state is used by Write only (one at a time).
type batcher struct {
	set  *settings
	meta *tmpl.Cache // the metadata subjects, nil without

	units   map[string]map[string]string // of each source, as last published (or to publish)
	dirty   map[string]bool              // sources whose metadata is to be published
	metaGen uint64                       // the connection (reconnect count) it was last published on
	metaSet bool
}

func newBatcher(set *settings) *batcher {
	b := &batcher{set: set, units: map[string]map[string]string{}, dirty: map[string]bool{}}
	if set.MetadataSubject != "" {
		b.meta = tmpl.NewCache(set.metaTemplate.Template)
	}
	return b
}

// write publishes batch as batch messages; see Sink.Write.
func (b *batcher) write(ctx context.Context, s *Sink, nc *nats.Conn, js jetstream.JetStream, batch []bridge.Sample) error {
	var be *bridge.BatchError
	fail := func(i, n int, err error) {
		if be == nil {
			be = bridge.NewBatchError()
		}
		for j := i; j < i+n; j++ {
			be.Fail(j, err)
		}
	}
	units := b.meta == nil
	// The payloads are never reused: the client may hold a message until
	// its acknowledgement.
	buf := make([]byte, 0, 64*len(batch))
	var msgs []outMsg
	for off := 0; off < len(batch); {
		n := bridge.NextBatch(batch[off:], maxBatchPoints)
		msg := batch[off : off+n]
		if !units {
			b.note(msg)
		}
		p := len(buf)
		buf = bridge.AppendBatchJSON(buf, msg, units)
		msgs = append(msgs, outMsg{idx: off, n: n, subject: s.subjects.Get(msg[0].Source, ""), data: buf[p:len(buf):len(buf)]})
		off += n
	}
	if b.meta != nil {
		if err := b.publishMeta(ctx, s, nc, js); err != nil {
			// Without the units the batch messages would be read without
			// them: keep every sample for the Bridge to retry.
			fail(0, len(batch), err)
			return be
		}
	}
	if js != nil {
		s.publishJetStream(ctx, js, msgs, fail)
	} else if err := publishCore(ctx, s.set, nc, msgs, fail); err != nil {
		return err
	}
	if be != nil {
		return be
	}
	return nil
}

// publishCore publishes msgs with core NATS and flushes: a round trip that
// proves the server received them. It returns an error for the whole batch
// when the flush fails, after fail for the messages that failed alone.
func publishCore(ctx context.Context, set *settings, nc *nats.Conn, msgs []outMsg, fail func(i, n int, err error)) error {
	failed := 0
	for _, m := range msgs {
		if err := nc.Publish(m.subject, m.data); err != nil {
			fail(m.idx, m.n, publishError(err))
			failed++
		}
	}
	if failed == len(msgs) {
		return nil // nothing was sent; the reasons say why
	}
	if !nc.IsConnected() {
		return fmt.Errorf("nats: write: %w", ErrNotConnected)
	}
	fctx, cancel := context.WithTimeout(ctx, set.AckTimeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("nats: write: flush: %w", err)
	}
	return nil
}

// note records the units of msg's points, marking the source's metadata
// for publishing when they changed.
func (b *batcher) note(msg []bridge.Sample) {
	src := msg[0].Source
	u := b.units[src]
	if u == nil {
		if len(b.units) >= bridge.MaxReportPoints {
			clear(b.units) // a bound on made-up source names
		}
		u = map[string]string{}
		b.units[src] = u
	}
	for i := range msg {
		if old, ok := u[msg[i].Point]; !ok || old != msg[i].Unit {
			if !ok && len(u) >= bridge.MaxReportPoints {
				continue
			}
			u[msg[i].Point] = msg[i].Unit
			b.dirty[src] = true
		}
	}
}

// publishMeta publishes the metadata of every source whose units changed,
// or of every source on a new connection, and returns the first failure;
// those are published again next time.
func (b *batcher) publishMeta(ctx context.Context, s *Sink, nc *nats.Conn, js jetstream.JetStream) error {
	if gen := nc.Stats().Reconnects; !b.metaSet || gen != b.metaGen {
		b.metaGen, b.metaSet = gen, true
		for src := range b.units {
			b.dirty[src] = true
		}
	}
	if len(b.dirty) == 0 {
		return nil
	}
	var msgs []outMsg
	var srcs []string
	for src := range b.dirty {
		msgs = append(msgs, outMsg{idx: len(msgs), n: 1, subject: b.meta.Get(src, ""), data: bridge.AppendMetaJSON(nil, src, b.units[src])})
		srcs = append(srcs, src)
	}
	var first error
	failed := map[int]bool{}
	fail := func(i, _ int, err error) {
		failed[i] = true
		if first == nil {
			first = fmt.Errorf("nats: metadata of source %q: %w", srcs[i], err)
		}
	}
	if js != nil {
		s.publishJetStream(ctx, js, msgs, fail)
	} else if err := publishCore(ctx, s.set, nc, msgs, fail); err != nil {
		return err
	}
	for i, src := range srcs {
		if !failed[i] {
			delete(b.dirty, src)
		}
	}
	return first
}
