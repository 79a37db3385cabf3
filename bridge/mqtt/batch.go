package mqtt

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"

	"github.com/m2mbridge/m2mbridge/bridge"
	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
)

// maxBatchPoints bounds the points of one batch message, so that a message
// stays well below what brokers accept (Mosquitto's default
// message_size_limit is the MQTT maximum, but many set 256 KiB): at about
// 60 bytes a point, 2,000 points are some 120 KB before compression.
const maxBatchPoints = 2000

// batcher writes in the batch layout: one message per source and poll
// cycle (bridge.NextBatch, bridge.AppendBatchJSON), optionally zstd
// compressed, and, with a metadata topic, the units of each source once
// per connection and whenever they change. Its state is used by Write
// only (one at a time).
type batcher struct {
	set  *settings
	zenc *zstd.Encoder // nil without compression
	meta *tmpl.Cache   // the metadata topics, nil without

	// units of each source as last published (or to publish), and the
	// sources whose metadata is to be published.
	units   map[string]map[string]string
	dirty   map[string]bool
	metaGen uint64 // the connection the metadata was last published on
	metaSet bool
	// points counts the points in units, at most maxPoints; untracked
	// counts the points beyond (read by Sink.Stats).
	points, maxPoints int
	untracked         atomic.Uint64
}

// maxMetaPoints bounds the points whose units the metadata tracks, over all
// sources: a source never forgets its points, so the bound is on the sum.
const maxMetaPoints = bridge.MaxReportPoints

func newBatcher(set *settings) *batcher {
	b := &batcher{set: set, units: map[string]map[string]string{}, dirty: map[string]bool{}, maxPoints: maxMetaPoints}
	if set.Compression == CompressionZstd {
		// EncodeAll only: no goroutines, safe for concurrent use. The
		// default level: small JSON messages gain little from more.
		b.zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	}
	if set.MetadataTopic != "" {
		b.meta = tmpl.NewCache(set.metaTemplate.Template)
	}
	return b
}

func (b *batcher) close() {
	if b.zenc != nil {
		b.zenc.Close()
	}
}

// write publishes batch as batch messages; see Sink.Write.
func (b *batcher) write(ctx context.Context, cli client, topics *tmpl.Cache, batch []bridge.Sample) error {
	var (
		failMu sync.Mutex
		be     *bridge.BatchError
	)
	span := make([]int32, len(batch)) // samples in the message starting here
	failRange := func(i, n int, err error) {
		failMu.Lock()
		defer failMu.Unlock()
		if be == nil {
			be = bridge.NewBatchError()
		}
		for j := i; j < i+n; j++ {
			if _, ok := be.Failed[j]; ok {
				// The first cause stays: a Permanent failure (a topic too
				// long) must not become retriable, or the samples would be
				// retried for ever instead of dead-lettered.
				continue
			}
			be.Fail(j, err)
		}
	}
	fail := func(i int, err error) { failRange(i, int(span[i]), err) }

	units := b.meta == nil
	ct := ""
	if b.set.Version == V5 {
		ct = ContentTypeJSON
	}
	if b.zenc != nil {
		ct = ContentTypeJSONZstd
	}
	// The payloads are never reused: the client may hold one after Write
	// returns, to resend it on reconnection.
	buf := make([]byte, 0, 64*len(batch))
	var items []item
	for off := 0; off < len(batch); {
		n := bridge.NextBatch(batch[off:], maxBatchPoints)
		msg := batch[off : off+n]
		span[off] = int32(n)
		start := off
		off += n
		topic := topics.Get(msg[0].Source, "")
		if len(topic) > maxTopicLen {
			failRange(start, n, bridge.Permanent(fmt.Errorf("mqtt: topic for source %q is %d bytes, more than MQTT allows (%d)", msg[0].Source, len(topic), maxTopicLen)))
			continue
		}
		inline := units
		if !units && !b.note(msg) {
			// A point the metadata does not track carries its unit here.
			inline = true
		}
		p := len(buf)
		buf = bridge.AppendBatchJSON(buf, msg, inline)
		payload := buf[p:len(buf):len(buf)]
		if b.zenc != nil {
			payload = b.zenc.EncodeAll(payload, make([]byte, 0, len(payload)/3+16))
			buf = buf[:p] // the JSON was only the encoder's input
		}
		items = append(items, item{idx: start, topic: topic, payload: payload, contentType: ct})
	}
	if b.meta != nil {
		if err := b.publishMeta(ctx, cli); err != nil {
			// Without the units the batch messages would be read without
			// them: keep every sample for the Bridge to retry.
			failRange(0, len(batch), err)
			return be
		}
	}
	cli.publishBatch(ctx, items, fail)
	if be == nil {
		return nil
	}
	return be
}

// note records the units of msg's points, marking the source's metadata
// for publishing when they changed. It reports whether every point of msg
// is tracked: the metadata holds at most maxPoints points, counted over all
// sources, and a message with a point beyond them carries its units itself
// (counted in untracked), so that no unit is lost and memory stays bounded
// whatever names the sources make up.
func (b *batcher) note(msg []bridge.Sample) bool {
	src := msg[0].Source
	u := b.units[src]
	all := true
	for i := range msg {
		old, ok := u[msg[i].Point]
		if ok && old == msg[i].Unit {
			continue
		}
		if !ok {
			if b.points >= b.maxPoints {
				all = false
				b.untracked.Add(1)
				continue
			}
			b.points++
		}
		if u == nil {
			u = map[string]string{}
			b.units[src] = u
		}
		u[msg[i].Point] = msg[i].Unit
		b.dirty[src] = true
	}
	return all
}

// publishMeta publishes, retained, the metadata of every source whose units
// changed, or of every source on a new connection; it returns the first
// failure, and publishes those again next time.
func (b *batcher) publishMeta(ctx context.Context, cli client) error {
	if gen := cli.generation(); !b.metaSet || gen != b.metaGen {
		b.metaGen, b.metaSet = gen, true
		for src := range b.units {
			b.dirty[src] = true
		}
	}
	if len(b.dirty) == 0 {
		return nil
	}
	var items []item
	var srcs []string
	for src := range b.dirty {
		if len(b.units[src]) == 0 {
			// Never a retained {"units":{}} over a source's metadata.
			delete(b.dirty, src)
			continue
		}
		items = append(items, item{idx: len(items), topic: b.meta.Get(src, ""), payload: bridge.AppendMetaJSON(nil, src, b.units[src]), retain: true, contentType: b.metaCT()})
		srcs = append(srcs, src)
	}
	var mu sync.Mutex
	var first error
	failed := map[int]bool{}
	cli.publishBatch(ctx, items, func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		failed[i] = true
		if first == nil {
			first = fmt.Errorf("mqtt: metadata of source %q: %w", srcs[i], err)
		}
	})
	for i, src := range srcs {
		if !failed[i] {
			delete(b.dirty, src)
		}
	}
	return first
}

func (b *batcher) metaCT() string {
	if b.set.Version == V5 {
		return ContentTypeJSON
	}
	return ""
}

// Stats are a Sink's counters.
type Stats struct {
	// UntrackedPoints counts, with layout batch and a metadata topic, the
	// times a point was not taken into the metadata because it already
	// tracks 100,000 points (over all sources); the batch message holding
	// such a point carries its units itself, so no unit is lost.
	UntrackedPoints uint64
}

// Stats returns the sink's counters. It may be called at any time.
func (s *Sink) Stats() Stats {
	if s.batch == nil {
		return Stats{}
	}
	return Stats{UntrackedPoints: s.batch.untracked.Load()}
}
